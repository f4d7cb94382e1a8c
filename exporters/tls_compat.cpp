#include "exporters/tls_compat.h"

#include <dlfcn.h>

#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace ghostwatch {
namespace {

std::vector<std::filesystem::path> shim_dirs() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  const auto dir = exe.parent_path();
  return {dir / "tls-compat", dir.parent_path() / "lib" / "ghostwatch"};
}

std::string load_from(const std::filesystem::path& dir) {
  for (const char* name : {"libcrypto-compat.so", "libssl-compat.so"}) {
    const auto path = dir / name;
    if (!std::filesystem::exists(path)) return path.string() + ": missing";
    if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) return dlerror();
  }
  return "";
}

}  // namespace

void load_tls_compat() {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    std::string tried;
    for (const auto& dir : shim_dirs()) {
      const std::string why = load_from(dir);
      if (why.empty()) return;
      tried += (tried.empty() ? "" : "; ") + why;
    }
    failure = "TLS needs ghostwatch's OpenSSL shims (libssl-compat.so, libcrypto-compat.so): " +
              (tried.empty() ? std::string("cannot locate the executable") : tried);
  });
  if (!failure.empty()) throw std::runtime_error(failure);
}

}  // namespace ghostwatch
