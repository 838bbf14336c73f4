#include "server/admin_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/crc.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

namespace fulcrum::registry {
namespace {

constexpr std::string_view kMagic = "fulcrum-registry-state";

uint32_t Crc32(std::string_view bytes) {
  boost::crc_32_type crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

Status Errno(const std::string& what, const std::string& path) {
  return Status::Error(StatusCode::kInternal, what + " " + path + ": " + std::strerror(errno));
}

Status WriteAll(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", path);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status Corrupt(const std::string& why) {
  return Status::Error(StatusCode::kInternal, "admin state is corrupt: " + why);
}

}  // namespace

const AdminEntry* AdminState::Find(const std::string& service, const std::string& address) const {
  auto s = entries_.find(service);
  if (s == entries_.end()) return nullptr;
  auto a = s->second.find(address);
  return a == s->second.end() ? nullptr : &a->second;
}

void AdminState::Set(const std::string& service, const std::string& address,
                     const AdminEntry& entry) {
  if (entry.empty()) {
    Erase(service, address);
    return;
  }
  entries_[service][address] = entry;
}

void AdminState::Erase(const std::string& service, const std::string& address) {
  auto s = entries_.find(service);
  if (s == entries_.end()) return;
  s->second.erase(address);
  if (s->second.empty()) entries_.erase(s);
}

const GroupRecord* AdminState::FindGroup(const std::string& service,
                                         const std::string& group) const {
  auto s = groups_.find(service);
  if (s == groups_.end()) return nullptr;
  auto g = s->second.find(group);
  return g == s->second.end() ? nullptr : &g->second;
}

void AdminState::SetGroup(const std::string& service, const std::string& group,
                          const GroupRecord& record) {
  groups_[service][group] = record;
}

size_t AdminState::size() const {
  size_t n = 0;
  for (const auto& [service, instances] : entries_) n += instances.size();
  return n;
}

std::string EncodeAdminState(const AdminState& state) {
  nlohmann::json instances = nlohmann::json::array();
  for (const auto& [service, by_address] : state.entries()) {
    for (const auto& [address, entry] : by_address) {
      nlohmann::json j = {{"service", service}, {"address", address}, {"drained", entry.drained}};
      if (entry.weight) j["weight"] = *entry.weight;
      instances.push_back(std::move(j));
    }
  }
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& [service, by_group] : state.groups()) {
    for (const auto& [group, record] : by_group) {
      groups.push_back({{"service", service},
                        {"group", group},
                        {"epoch", record.epoch},
                        {"master", record.master},
                        {"master_incarnation", record.master_incarnation}});
    }
  }
  const std::string body =
      nlohmann::json{{"instances", instances}, {"groups", groups}}.dump(1) + "\n";
  char header[128];
  std::snprintf(header, sizeof(header), "%s %d %zu %08x\n", std::string(kMagic).c_str(),
                AdminStateFile::kFormatVersion, body.size(), Crc32(body));
  return header + body;
}

StatusOr<AdminState> DecodeAdminState(const std::string& bytes) {
  const size_t eol = bytes.find('\n');
  if (eol == std::string::npos || eol > 200) return Corrupt("no header line (truncated?)");
  std::istringstream header(bytes.substr(0, eol));
  std::string magic;
  int version = 0;
  long long length = -1;
  std::string crc_hex;
  header >> magic >> version >> length >> crc_hex;
  if (magic != kMagic) return Corrupt("not a fulcrum-registry state file (bad header)");
  if (header.fail() || length < 0 || crc_hex.empty()) return Corrupt("malformed header line");
  if (version < AdminStateFile::kOldestFormatVersion || version > AdminStateFile::kFormatVersion) {
    return Status::Error(StatusCode::kInternal,
                         "admin state has format version " + std::to_string(version) +
                             ", this registry reads versions " +
                             std::to_string(AdminStateFile::kOldestFormatVersion) + " to " +
                             std::to_string(AdminStateFile::kFormatVersion));
  }
  const std::string body = bytes.substr(eol + 1);
  if (body.size() != static_cast<size_t>(length)) {
    return Corrupt("body is " + std::to_string(body.size()) + " bytes, header says " +
                   std::to_string(length) + " (truncated or appended to)");
  }
  char* end = nullptr;
  const unsigned long want = std::strtoul(crc_hex.c_str(), &end, 16);
  if (*end != '\0') return Corrupt("malformed checksum '" + crc_hex + "'");
  if (Crc32(body) != want) return Corrupt("checksum mismatch (bytes changed on disk)");

  AdminState state;
  try {
    const nlohmann::json j = nlohmann::json::parse(body);
    for (const auto& item : j.at("instances")) {
      AdminEntry entry;
      entry.drained = item.at("drained").get<bool>();
      if (item.contains("weight")) entry.weight = item.at("weight").get<int32_t>();
      const std::string service = item.at("service").get<std::string>();
      const std::string address = item.at("address").get<std::string>();
      if (service.empty() || address.empty()) return Corrupt("an entry has no service/address");
      state.Set(service, address, entry);
    }
    // Version 1 files predate master-slave groups.
    if (version >= 2) {
      for (const auto& item : j.at("groups")) {
        GroupRecord record;
        record.epoch = item.at("epoch").get<int64_t>();
        record.master = item.at("master").get<std::string>();
        // Files written before incarnations existed have none: not known.
        record.master_incarnation = item.value("master_incarnation", int64_t{0});
        const std::string service = item.at("service").get<std::string>();
        const std::string group = item.at("group").get<std::string>();
        if (service.empty() || group.empty()) return Corrupt("a group has no service/group name");
        if (record.epoch < 0)
          return Corrupt("group " + service + "/" + group + " has a negative epoch");
        state.SetGroup(service, group, record);
      }
    }
  } catch (const nlohmann::json::exception& e) {
    // The checksum matched, so this is a file written by a buggy or foreign writer.
    return Corrupt(std::string("body does not parse: ") + e.what());
  }
  return state;
}

StatusOr<AdminState> AdminStateFile::Load() const {
  const std::string file = path();
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return AdminState();
    return Errno("cannot open", file);
  }
  std::string bytes;
  char buf[64 * 1024];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Errno("cannot read", file);
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  StatusOr<AdminState> state = DecodeAdminState(bytes);
  if (!state.ok()) {
    return Status::Error(StatusCode::kInternal, file + ": " + state.status().message());
  }
  return state;
}

Status AdminStateFile::Save(const AdminState& state) const {
  const std::string file = path();
  const std::string tmp = file + ".tmp";
  const std::string bytes = EncodeAdminState(state);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", tmp);
  Status s = WriteAll(fd, bytes, tmp);
  if (s.ok() && ::fsync(fd) != 0) s = Errno("cannot fsync", tmp);
  if (::close(fd) != 0 && s.ok()) s = Errno("cannot close", tmp);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    Status e = Errno("cannot rename over", file);
    ::unlink(tmp.c_str());
    return e;
  }
  // The rename is durable only once the directory entry is.
  int dir = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return Errno("cannot open directory", dir_);
  s = ::fsync(dir) == 0 ? Status::Ok() : Errno("cannot fsync directory", dir_);
  ::close(dir);
  return s;
}

}  // namespace fulcrum::registry
