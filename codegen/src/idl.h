// The IDL model fulcrum-gen works from, loaded from the stock compiler's JSON.
//
//   Idl idl = Idl::Load("out/calculator.json", "idl/calculator.thrift");  // throws GenError
//   for (const Service& s : idl.services()) ...
//
// `thrift --gen json -r` writes one JSON file per program (the IDL and each file it includes,
// side by side); included programs are read from beside the main one. Services are flattened:
// each lists its inherited functions first, as the stock client does. The fulcrum.*
// annotations are validated here, so every later step sees only good values.
// Not thread-safe to load; the loaded model is immutable.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fulcrum::codegen {

// A generation error: bad input, or an IDL whose annotations are wrong. The message names
// the file, and the service, function and annotation when there is one.
class GenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Program;

struct Type {
  // bool i8 i16 i32 i64 double string binary struct union exception list set map void
  std::string id;
  std::string cls;  // struct-like: "Name", or "program.Name" for an included program's
  std::shared_ptr<const Type> elem, key, value;  // list/set: elem; map: key, value
  bool cpp_annotated = false;  // carries a cpp.* annotation: the C++ type may differ

  bool IsStructLike() const { return id == "struct" || id == "union" || id == "exception"; }
  bool IsContainer() const { return id == "list" || id == "set" || id == "map"; }
  bool IsInteger() const { return id == "i8" || id == "i16" || id == "i32" || id == "i64"; }
  bool IsBytes() const { return id == "string" || id == "binary"; }
  // Whether any part of the type is an i32 (which may really be an enum).
  bool MentionsI32() const;
  bool MentionsCppAnnotation() const;
};

struct Field {
  std::string name;
  Type type;
};

struct StructDef {
  std::string name;
  std::vector<Field> fields;
};

struct Program {
  std::string name;           // the file's stem, as includes and class names refer to it
  std::string idl_path;       // for messages
  std::string cpp_namespace;  // "a::b", or empty for the global namespace
  std::string doc;
  std::vector<std::string> includes;
  std::map<std::string, StructDef> structs;
  bool has_enums = false;
  bool has_cpp_typedefs = false;
  nlohmann::json json;
};

struct Function {
  const Program* program = nullptr;  // the program that declares it
  std::string service;               // the service that declares it
  std::string name;
  std::string doc;
  Type result;  // id "void" when it returns nothing
  bool oneway = false;
  std::vector<Field> args;
  std::vector<Field> exceptions;

  // From the fulcrum.* annotations.
  bool idempotent = false;
  bool read = false;
  int32_t timeout_ms = 0;
  int32_t hedge_ms = 0;
  std::vector<std::string> hash_path;  // argument, then fields; empty: no hash key
  Type hash_type;                      // the type at the end of hash_path
};

struct Service {
  const Program* program = nullptr;
  std::string name;
  std::string doc;
  std::string extends;  // as written in the IDL ("base.Base"), empty if none
  bool master_slave = false;
  std::string balancer;             // empty: the channel's default
  std::vector<Function> functions;  // inherited first
};

class Idl {
 public:
  // Reads `json_path` and the JSON of every program it includes (beside it). `idl_path`
  // names the IDL in messages; empty: the JSON's path.
  static Idl Load(const std::string& json_path, const std::string& idl_path);
  // The same from JSON text in memory (tests, the fuzz target); includes are read from `dir`.
  static Idl FromText(const std::string& text, const std::string& dir = ".");

  const Program& main() const { return *main_; }
  const std::vector<Service>& services() const { return services_; }
  // Whether the C++ type of an i32 is knowable: not when any program in play declares an enum.
  bool AnyEnums() const;
  bool AnyCppTypedefs() const;
  // The program a class name refers to from `from` ("base.Req" -> base, "Req" -> from).
  const Program& ProgramOf(const Program& from, const std::string& cls) const;
  const StructDef* FindStruct(const Program& from, const std::string& cls) const;

 private:
  Program& LoadProgram(const std::string& name, const std::string& json_path,
                       const std::string& idl_path, const std::string* text = nullptr);
  void BuildServices();
  Service BuildService(const Program& program, const nlohmann::json& service, int depth);
  void ParseAnnotations(const Program& program, Service& service,
                        const nlohmann::json& annotations);
  void ParseAnnotations(const Program& program, const std::string& service, Function& function,
                        const nlohmann::json& annotations);
  void ResolveHashKey(const Program& program, const std::string& service, Function& function,
                      const std::string& value);

  std::string dir_;
  std::map<std::string, std::unique_ptr<Program>> programs_;
  Program* main_ = nullptr;
  std::vector<Service> services_;
};

}  // namespace fulcrum::codegen
