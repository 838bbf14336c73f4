#include "idl.h"

#include <algorithm>
#include <climits>
#include <fstream>
#include <sstream>

#include "json_repair.h"

namespace fulcrum::codegen {
namespace {

using nlohmann::json;

// Far beyond any real IDL (each nested container type adds two levels), and shallow enough
// that walking the tree recursively cannot exhaust the stack.
constexpr size_t kMaxNesting = 512;

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw GenError(path + ": cannot read the file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw GenError(path + ": cannot read the file");
  return text.str();
}

// Accessors that turn a JSON of the wrong shape into a GenError naming where.
const json& Member(const json& obj, const char* key, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key)) {
    throw GenError(where + ": expected a \"" + key +
                   "\" member (is this thrift --gen json output?)");
  }
  return obj.at(key);
}

std::string String(const json& obj, const char* key, const std::string& where) {
  const json& v = Member(obj, key, where);
  if (!v.is_string()) throw GenError(where + ": \"" + key + "\" is not a string");
  return v.get<std::string>();
}

std::string OptionalString(const json& obj, const char* key, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key)) return "";
  return String(obj, key, where);
}

const json& Array(const json& obj, const char* key, const std::string& where) {
  const json& v = Member(obj, key, where);
  if (!v.is_array()) throw GenError(where + ": \"" + key + "\" is not an array");
  return v;
}

const json& OptionalObject(const json& obj, const char* key, const std::string& where) {
  static const json kEmpty = json::object();
  if (!obj.is_object() || !obj.contains(key)) return kEmpty;
  const json& v = obj.at(key);
  if (!v.is_object()) throw GenError(where + ": \"" + key + "\" is not an object");
  return v;
}

bool HasCppAnnotation(const json& annotations) {
  for (const auto& [key, value] : annotations.items()) {
    if (key.rfind("cpp.", 0) == 0) return true;
  }
  return false;
}

// `prefix` is "elem", "key", "value", or "" for the type itself.
Type ParseType(const json& holder, const std::string& id_key, const std::string& type_key,
               const std::string& where) {
  Type t;
  t.id = String(holder, id_key.c_str(), where);
  const json* spec = nullptr;
  if (holder.contains(type_key)) {
    spec = &holder.at(type_key);
    if (!spec->is_object()) throw GenError(where + ": \"" + type_key + "\" is not an object");
  }
  static const char* const kKnown[] = {"bool",   "i8",     "i16",    "i32",       "i64",
                                       "double", "string", "binary", "struct",    "union",
                                       "list",   "set",    "map",    "exception", "void"};
  if (std::find(std::begin(kKnown), std::end(kKnown), t.id) == std::end(kKnown)) {
    throw GenError(where + ": unknown type id \"" + t.id + "\"");
  }
  if (spec != nullptr)
    t.cpp_annotated = HasCppAnnotation(OptionalObject(*spec, "annotations", where));
  if (t.IsStructLike()) {
    if (spec == nullptr) throw GenError(where + ": a " + t.id + " type without its class");
    t.cls = String(*spec, "class", where);
  } else if (t.id == "list" || t.id == "set") {
    if (spec == nullptr) throw GenError(where + ": a " + t.id + " type without its element");
    t.elem = std::make_shared<Type>(ParseType(*spec, "elemTypeId", "elemType", where));
  } else if (t.id == "map") {
    if (spec == nullptr) throw GenError(where + ": a map type without its key and value");
    t.key = std::make_shared<Type>(ParseType(*spec, "keyTypeId", "keyType", where));
    t.value = std::make_shared<Type>(ParseType(*spec, "valueTypeId", "valueType", where));
  }
  return t;
}

std::vector<Field> ParseFields(const json& list, const std::string& where) {
  std::vector<Field> fields;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string at = where + "[" + std::to_string(i) + "]";
    fields.push_back({String(list[i], "name", at), ParseType(list[i], "typeId", "type", at)});
  }
  return fields;
}

bool ParseBool(const std::string& value, bool& out) {
  // A valueless annotation, `(fulcrum.idempotent)`, arrives as "1".
  if (value == "true" || value == "1") {
    out = true;
  } else if (value == "false" || value == "0") {
    out = false;
  } else {
    return false;
  }
  return true;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

// Finds fulcrum.* annotations where they mean nothing (structs, fields, enums, typedefs).
// `kind` names what the list holds; `label` is the innermost named thing seen so far.
void CheckStrayAnnotations(const Program& program, const json& node, const std::string& kind,
                           const std::string& label) {
  if (node.is_object()) {
    std::string here = label;
    if (node.contains("name") && node.at("name").is_string()) {
      here = label.empty() ? kind + " " + node.at("name").get<std::string>()
                           : label + ", " + node.at("name").get<std::string>();
    }
    for (const auto& [key, value] : node.items()) {
      if (key == "annotations" && value.is_object()) {
        for (const auto& [name, v] : value.items()) {
          if (name.rfind("fulcrum.", 0) == 0) {
            throw GenError(program.idl_path + ": " + (here.empty() ? kind : here) +
                           ": annotation " + name +
                           ": fulcrum annotations belong on services and functions only");
          }
        }
      } else {
        CheckStrayAnnotations(program, value, kind, here);
      }
    }
  } else if (node.is_array()) {
    for (const json& item : node) CheckStrayAnnotations(program, item, kind, label);
  }
}

}  // namespace

bool Type::MentionsI32() const {
  return id == "i32" || (elem && elem->MentionsI32()) || (key && key->MentionsI32()) ||
         (value && value->MentionsI32());
}

bool Type::MentionsCppAnnotation() const {
  return cpp_annotated || (elem && elem->MentionsCppAnnotation()) ||
         (key && key->MentionsCppAnnotation()) || (value && value->MentionsCppAnnotation());
}

Idl Idl::Load(const std::string& json_path, const std::string& idl_path) {
  Idl idl;
  idl.dir_ = DirOf(json_path);
  idl.main_ = &idl.LoadProgram("", json_path, idl_path.empty() ? json_path : idl_path);
  idl.BuildServices();
  return idl;
}

Idl Idl::FromText(const std::string& text, const std::string& dir) {
  Idl idl;
  idl.dir_ = dir;
  idl.main_ = &idl.LoadProgram("", "<input>", "<input>", &text);
  idl.BuildServices();
  return idl;
}

void Idl::BuildServices() {
  const Program& main = *main_;
  const json& services = Array(main.json, "services", main.idl_path);
  for (size_t i = 0; i < services.size(); ++i) {
    services_.push_back(BuildService(main, services[i], 0));
  }
}

Program& Idl::LoadProgram(const std::string& name, const std::string& json_path,
                          const std::string& idl_path, const std::string* text) {
  if (!name.empty()) {
    auto it = programs_.find(name);
    if (it != programs_.end()) return *it->second;
  }
  auto program = std::make_unique<Program>();
  program->idl_path = idl_path;
  try {
    std::string repaired = RepairThriftJson(text ? *text : ReadFile(json_path));
    if (JsonNesting(repaired) > kMaxNesting) {
      throw GenError(json_path + ": JSON nested deeper than " + std::to_string(kMaxNesting) +
                     " levels (is this thrift --gen json output?)");
    }
    program->json = json::parse(repaired);
  } catch (const json::exception& e) {
    throw GenError(json_path + ": malformed JSON: " + e.what());
  }
  const json& j = program->json;
  const std::string& where = json_path;
  if (!j.is_object())
    throw GenError(where + ": not a JSON object (is this thrift --gen json output?)");
  program->name = String(j, "name", where);
  if (!name.empty() && program->name != name) {
    throw GenError(where + ": holds program \"" + program->name + "\", expected \"" + name + "\"");
  }
  program->doc = OptionalString(j, "doc", where);
  const json& namespaces = OptionalObject(j, "namespaces", where);
  std::string ns;
  if (namespaces.contains("cpp") && namespaces.at("cpp").is_string()) {
    ns = namespaces.at("cpp").get<std::string>();
  } else if (namespaces.contains("*") && namespaces.at("*").is_string()) {
    ns = namespaces.at("*").get<std::string>();
  }
  for (const std::string& part : Split(ns, '.')) {
    if (part.empty()) continue;
    if (!program->cpp_namespace.empty()) program->cpp_namespace += "::";
    program->cpp_namespace += part;
  }
  program->has_enums = !Array(j, "enums", where).empty();
  for (const json& t : Array(j, "typedefs", where)) {
    program->has_cpp_typedefs |= t.dump().find("\"cpp.") != std::string::npos;
  }
  for (const json& s : Array(j, "structs", where)) {
    std::string sname = String(s, "name", where);
    program->structs[sname] = {
        sname, ParseFields(Array(s, "fields", where + ": " + sname), where + ": struct " + sname)};
  }
  for (const json& inc : Array(j, "includes", where)) {
    if (!inc.is_string()) throw GenError(where + ": an include that is not a string");
    program->includes.push_back(inc.get<std::string>());
  }
  CheckStrayAnnotations(*program, j.at("enums"), "enum", "");
  CheckStrayAnnotations(*program, j.at("typedefs"), "typedef", "");
  CheckStrayAnnotations(*program, j.at("structs"), "struct", "");
  Program& stored = *program;
  programs_[stored.name] = std::move(program);
  for (const std::string& inc : stored.includes) {
    LoadProgram(inc, dir_ + "/" + inc + ".json", inc + ".thrift");
  }
  return stored;
}

bool Idl::AnyEnums() const {
  return std::any_of(programs_.begin(), programs_.end(),
                     [](const auto& p) { return p.second->has_enums; });
}

bool Idl::AnyCppTypedefs() const {
  return std::any_of(programs_.begin(), programs_.end(),
                     [](const auto& p) { return p.second->has_cpp_typedefs; });
}

const Program& Idl::ProgramOf(const Program& from, const std::string& cls) const {
  size_t dot = cls.find('.');
  if (dot == std::string::npos) return from;
  auto it = programs_.find(cls.substr(0, dot));
  if (it == programs_.end()) {
    throw GenError(from.idl_path + ": type " + cls + " names a program that is not included");
  }
  return *it->second;
}

const StructDef* Idl::FindStruct(const Program& from, const std::string& cls) const {
  const Program& p = ProgramOf(from, cls);
  size_t dot = cls.find('.');
  auto it = p.structs.find(dot == std::string::npos ? cls : cls.substr(dot + 1));
  return it == p.structs.end() ? nullptr : &it->second;
}

Service Idl::BuildService(const Program& program, const json& js, int depth) {
  std::string where = program.idl_path;
  Service service;
  service.program = &program;
  service.name = String(js, "name", where);
  where += ": service " + service.name;
  service.doc = OptionalString(js, "doc", where);
  service.extends = OptionalString(js, "extends", where);
  ParseAnnotations(program, service, OptionalObject(js, "annotations", where));

  if (!service.extends.empty()) {
    if (depth > 64) throw GenError(where + ": extends chain too deep");
    const Program& base_program = ProgramOf(program, service.extends);
    size_t dot = service.extends.find('.');
    std::string base_name =
        dot == std::string::npos ? service.extends : service.extends.substr(dot + 1);
    const json* base = nullptr;
    for (const json& s : Array(base_program.json, "services", base_program.idl_path)) {
      if (s.is_object() && s.contains("name") && s.at("name") == base_name) base = &s;
    }
    if (base == nullptr) {
      throw GenError(where + ": extends " + service.extends + ", which " + base_program.idl_path +
                     " does not declare");
    }
    service.functions = BuildService(base_program, *base, depth + 1).functions;
  }

  const json& functions = Array(js, "functions", where);
  for (size_t i = 0; i < functions.size(); ++i) {
    const json& jf = functions[i];
    std::string at = where + ": functions[" + std::to_string(i) + "]";
    Function f;
    f.program = &program;
    f.service = service.name;
    f.name = String(jf, "name", at);
    at = where + ", function " + f.name;
    f.doc = OptionalString(jf, "doc", at);
    f.result = ParseType(jf, "returnTypeId", "returnType", at);
    const json& oneway = Member(jf, "oneway", at);
    if (!oneway.is_boolean()) throw GenError(at + ": \"oneway\" is not a boolean");
    f.oneway = oneway.get<bool>();
    f.args = ParseFields(Array(jf, "arguments", at), at + ": arguments");
    f.exceptions = ParseFields(Array(jf, "exceptions", at), at + ": exceptions");
    ParseAnnotations(program, service.name, f, OptionalObject(jf, "annotations", at));
    // A function redeclared in a derived service replaces the inherited one.
    auto same = std::find_if(service.functions.begin(), service.functions.end(),
                             [&](const Function& g) { return g.name == f.name; });
    if (same != service.functions.end()) {
      *same = std::move(f);
    } else {
      service.functions.push_back(std::move(f));
    }
  }
  return service;
}

void Idl::ParseAnnotations(const Program& program, Service& service, const json& annotations) {
  for (const auto& [key, v] : annotations.items()) {
    if (key.rfind("fulcrum.", 0) != 0) continue;  // other tools' annotations
    std::string where = program.idl_path + ": service " + service.name + ": annotation " + key;
    if (!v.is_string()) throw GenError(where + ": the value is not a string");
    std::string value = v.get<std::string>();
    if (key == "fulcrum.mode") {
      if (value != "master_slave" && value != "stateless") {
        throw GenError(where + " = \"" + value + "\": expected \"master_slave\" or \"stateless\"");
      }
      service.master_slave = value == "master_slave";
    } else if (key == "fulcrum.balancer") {
      bool ok = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      });
      if (!ok) {
        throw GenError(where + " = \"" + value +
                       "\": expected a balancer name (lower case, digits, _)");
      }
      service.balancer = value;
    } else if (key == "fulcrum.idempotent" || key == "fulcrum.timeout_ms" ||
               key == "fulcrum.hash_key" || key == "fulcrum.read" || key == "fulcrum.hedge_ms") {
      throw GenError(where + ": applies to functions, not services");
    } else {
      throw GenError(where +
                     ": unknown fulcrum annotation (services take fulcrum.mode, fulcrum.balancer)");
    }
  }
}

namespace {

// A fulcrum.*_ms annotation's value: a positive whole number of milliseconds.
int32_t ParseMillis(const std::string& value, const std::string& where) {
  bool digits =
      !value.empty() && value.size() <= 10 &&
      std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
  long long ms = digits ? std::stoll(value) : 0;
  if (!digits || ms <= 0 || ms > INT32_MAX) {
    throw GenError(where + ": expected a positive whole number of milliseconds");
  }
  return static_cast<int32_t>(ms);
}

}  // namespace

void Idl::ParseAnnotations(const Program& program, const std::string& service, Function& function,
                           const json& annotations) {
  for (const auto& [key, v] : annotations.items()) {
    if (key.rfind("fulcrum.", 0) != 0) continue;
    std::string where = program.idl_path + ": service " + service + ", function " + function.name +
                        ": annotation " + key;
    if (!v.is_string()) throw GenError(where + ": the value is not a string");
    std::string value = v.get<std::string>();
    std::string with_value = where + " = \"" + value + "\"";
    if (key == "fulcrum.idempotent") {
      if (!ParseBool(value, function.idempotent)) {
        throw GenError(with_value + ": expected \"true\" or \"false\"");
      }
    } else if (key == "fulcrum.read") {
      if (!ParseBool(value, function.read)) {
        throw GenError(with_value + ": expected \"true\" or \"false\"");
      }
    } else if (key == "fulcrum.timeout_ms") {
      function.timeout_ms = ParseMillis(value, with_value);
    } else if (key == "fulcrum.hedge_ms") {
      function.hedge_ms = ParseMillis(value, with_value);
    } else if (key == "fulcrum.hash_key") {
      ResolveHashKey(program, service, function, value);
    } else if (key == "fulcrum.mode" || key == "fulcrum.balancer") {
      throw GenError(where + ": applies to services, not functions");
    } else {
      throw GenError(where +
                     ": unknown fulcrum annotation (functions take fulcrum.idempotent, "
                     "fulcrum.timeout_ms, fulcrum.hedge_ms, fulcrum.hash_key, fulcrum.read)");
    }
  }
  if (function.hedge_ms > 0) {
    // A hedge sends the request a second time while the first may still run.
    std::string where = program.idl_path + ": service " + service + ", function " + function.name +
                        ": annotation fulcrum.hedge_ms";
    if (function.oneway) throw GenError(where + ": a oneway function has no reply to wait for");
    if (!function.idempotent) {
      throw GenError(where + ": needs fulcrum.idempotent (a hedge runs the call twice)");
    }
    if (function.timeout_ms > 0 && function.hedge_ms >= function.timeout_ms) {
      throw GenError(where + " = \"" + std::to_string(function.hedge_ms) +
                     "\": not shorter than fulcrum.timeout_ms (" +
                     std::to_string(function.timeout_ms) + "), so no hedge would ever start");
    }
  }
}

void Idl::ResolveHashKey(const Program& program, const std::string& service, Function& function,
                         const std::string& value) {
  std::string where = program.idl_path + ": service " + service + ", function " + function.name +
                      ": annotation fulcrum.hash_key = \"" + value + "\"";
  std::vector<std::string> path = Split(value, '.');
  for (const std::string& part : path) {
    if (part.empty())
      throw GenError(where + ": expected an argument name or a path like req.user_id");
  }
  auto arg = std::find_if(function.args.begin(), function.args.end(),
                          [&](const Field& f) { return f.name == path[0]; });
  if (arg == function.args.end()) {
    std::string names;
    for (const Field& f : function.args) names += (names.empty() ? "" : ", ") + f.name;
    throw GenError(where + ": " + function.name + " has no argument " + path[0] +
                   (names.empty() ? " (it takes none)" : " (its arguments: " + names + ")"));
  }
  Type type = arg->type;
  const Program* context = &program;
  for (size_t i = 1; i < path.size(); ++i) {
    if (!type.IsStructLike()) {
      throw GenError(where + ": " + path[i - 1] + " is a " + type.id +
                     ", not a struct, so it has no field " + path[i]);
    }
    const StructDef* def = FindStruct(*context, type.cls);
    if (def == nullptr) throw GenError(where + ": struct " + type.cls + " is not declared");
    auto field = std::find_if(def->fields.begin(), def->fields.end(),
                              [&](const Field& f) { return f.name == path[i]; });
    if (field == def->fields.end()) {
      throw GenError(where + ": struct " + type.cls + " has no field " + path[i]);
    }
    context = &ProgramOf(*context, type.cls);
    type = field->type;
  }
  if (!type.IsBytes() && !type.IsInteger()) {
    throw GenError(where + ": " + value + " is a " + type.id +
                   "; only strings, binary and integers (or enums) can be hash keys");
  }
  function.hash_path = std::move(path);
  function.hash_type = std::move(type);
}

}  // namespace fulcrum::codegen
