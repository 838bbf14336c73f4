#include "json_repair.h"

#include <vector>

namespace fulcrum::codegen {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Index just past the JSON string starting at `i` (which holds the opening quote).
size_t SkipString(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return s.size();
}

// Index of the ':' that ends a bare key starting at `i`: the first one outside brackets and
// strings. Returns npos when there is none (the parser then reports the malformed input).
size_t FindKeyEnd(std::string_view s, size_t i) {
  int depth = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '"') {
      i = SkipString(s, i);
      continue;
    }
    if (c == '[' || c == '{') ++depth;
    if (c == ']' || c == '}') {
      if (--depth < 0) return std::string_view::npos;
    }
    if (c == ':' && depth == 0) return i;
    ++i;
  }
  return std::string_view::npos;
}

void AppendQuoted(std::string& out, std::string_view text) {
  // Trailing whitespace belongs to the layout, not the key.
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  out += '"';
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (IsSpace(c)) {
      if (!out.empty() && out.back() != ' ' && out.back() != '"') out += ' ';
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

std::string RepairThriftJson(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  // One entry per open container: true for an object.
  std::vector<bool> in_object;
  bool expect_key = false;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (IsSpace(c)) {
      out += c;
      ++i;
      continue;
    }
    if (expect_key && c != '"' && c != '}') {
      size_t end = FindKeyEnd(s, i);
      if (end == std::string_view::npos) {
        out.append(s.substr(i));
        return out;
      }
      AppendQuoted(out, s.substr(i, end - i));
      i = end;
      expect_key = false;
      continue;
    }
    expect_key = false;
    if (c == '"') {
      size_t end = SkipString(s, i);
      out.append(s.substr(i, end - i));
      i = end;
      continue;
    }
    out += c;
    ++i;
    if (c == '{') {
      in_object.push_back(true);
      expect_key = true;
    } else if (c == '[') {
      in_object.push_back(false);
    } else if ((c == '}' || c == ']') && !in_object.empty()) {
      in_object.pop_back();
    } else if (c == ',' && !in_object.empty() && in_object.back()) {
      expect_key = true;
    }
  }
  return out;
}

}  // namespace fulcrum::codegen
