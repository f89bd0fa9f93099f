#include "tests/reliability/reliability_util.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "engine/volume_metadata.h"

namespace svmkey::reliability {

using integration::FingerprintVolumes;
using integration::Quote;
using integration::ReadFile;
using integration::Sh;
using integration::TableFile;

std::vector<uint64_t> CurrentSlotGenerations(const std::string& table_path,
                                             const std::string& svm) {
  std::vector<uint64_t> out;
  TableFile table(table_path);
  if (!table.ok()) return out;
  const auto rows =
      table.QueryRows("SELECT metadata_path FROM volumes WHERE svm_uuid = ?1 ORDER BY id", {svm});
  for (const auto& r : rows) {
    const std::string bytes = ReadFile(r[0]);
    auto decoded = DecodeMetadataFile(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
        nullptr);
    uint64_t g = 0;
    if (decoded.ok()) {
      int idx[2];
      if (decoded->Candidates(idx) > 0) g = decoded->slot[idx[0]]->generation;
    }
    out.push_back(g);
  }
  return out;
}

std::string CheckInvariant(const std::string& table_path, const std::string& svm,
                           const std::string& config, uint64_t generation,
                           const std::string& kek_file, const VolumeFingerprints& original,
                           const std::array<uint8_t, 32>& fingerprint_key) {
  std::ostringstream bad;
  const std::string gen = std::to_string(generation);
  {
    TableFile t(table_path);
    if (!t.ok()) return "cannot open the table: " + t.error();
    const auto active =
        t.QueryInt("SELECT generation FROM svm_keks WHERE svm_uuid=?1 AND state='active'", {svm});
    if (active != static_cast<int64_t>(generation)) {
      bad << "table: active SVM-KEK generation " << active.value_or(-1) << ", expected " << gen
          << "; ";
    }
    const auto pending =
        t.QueryInt("SELECT count(*) FROM svm_keks WHERE svm_uuid=?1 AND state='pending'", {svm});
    if (pending != 0) bad << "table: " << pending.value_or(-1) << " pending SVM-KEKs; ";
    const auto state = t.QueryText("SELECT state FROM key_stores WHERE uuid=?1", {config});
    if (state != "active") bad << "table: key store state " << state.value_or("?") << "; ";
    const auto off =
        t.QueryInt("SELECT count(*) FROM volumes WHERE svm_uuid=?1 AND generation<>?2", {svm, gen});
    if (off != 0) bad << "table: " << off.value_or(-1) << " volume rows not at " << gen << "; ";
  }
  const auto slots = CurrentSlotGenerations(table_path, svm);
  if (slots.size() != original.uuids.size()) {
    bad << "files: " << slots.size() << " read, expected " << original.uuids.size() << "; ";
  }
  const size_t off_files = static_cast<size_t>(
      std::count_if(slots.begin(), slots.end(), [&](uint64_t g) { return g != generation; }));
  if (off_files) bad << "files: " << off_files << " current slots not at " << gen << "; ";
  std::string error;
  const VolumeFingerprints now = FingerprintVolumes(table_path, svm, generation, generation,
                                                    kek_file, fingerprint_key, &error);
  if (!error.empty()) return bad.str() + "keys: " + error;
  if (now.opened != original.uuids.size()) {
    bad << "keys: " << now.opened << " of " << original.uuids.size() << " VDEKs open; ";
  }
  size_t changed = 0;
  for (size_t i = 0; i < now.uuids.size() && i < original.uuids.size(); ++i) {
    changed += now.uuids[i] != original.uuids[i] || now.fingerprints[i] != original.fingerprints[i];
  }
  if (changed) bad << "keys: " << changed << " VDEKs differ from the original; ";
  return bad.str();
}

std::string DumpTable(const std::string& table_path, const std::vector<std::string>& exclude) {
  auto r = Sh("sqlite3 " + Quote(table_path) + " .dump", std::chrono::seconds(300));
  if (r.status != 0) return "sqlite3 failed: " + r.err;
  std::istringstream in(r.out);
  std::string line, out;
  while (std::getline(in, line)) {
    bool skip = false;
    for (const auto& t : exclude) {
      skip = skip || line.rfind("INSERT INTO " + t + " ", 0) == 0 ||
             line.rfind("INSERT INTO \"" + t + "\"", 0) == 0 ||
             line.rfind("INSERT INTO " + t + "(", 0) == 0;
    }
    if (!skip) out += line + "\n";
  }
  return out;
}

std::map<std::string, std::string> HashTree(const std::string& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string bytes = ReadFile(it->path().string());
    unsigned char h[32];
    crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(bytes.data()),
                       bytes.size(), nullptr, 0);
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    out[it->path().string()] = hex;
  }
  return out;
}

KillSwitch::KillSwitch(sdbus::IConnection& connection) {
  slot_ = connection.addMatch(
      "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
      "arg0='org.svmkey.Job1'",
      [this](sdbus::Message& msg) {
        std::string iface;
        integration::VariantMap changed;
        std::vector<std::string> invalidated;
        try {
          msg >> iface >> changed >> invalidated;
        } catch (const sdbus::Error&) {
          return;
        }
        std::lock_guard<std::mutex> lock(mu_);
        if (pid_ <= 0 || !pred_ || fired_) return;
        for (const auto& [k, v] : changed) {
          if (v.peekValueType() != "s") continue;
          const std::string value = v.get<std::string>();
          if (pred_(k, value)) {
            if (kill_) ::kill(pid_, SIGKILL);
            fired_ = true;
            fired_on_ = k + "=" + value;
            return;
          }
        }
      });
}

KillSwitch::~KillSwitch() { Disarm(); }

void KillSwitch::Arm(pid_t pid, std::function<bool(const std::string&, const std::string&)> pred,
                     bool kill) {
  std::lock_guard<std::mutex> lock(mu_);
  pid_ = pid;
  kill_ = kill;
  pred_ = std::move(pred);
  fired_ = false;
  fired_on_.clear();
}

void KillSwitch::Disarm() {
  std::lock_guard<std::mutex> lock(mu_);
  pid_ = -1;
  pred_ = nullptr;
}

std::string KillSwitch::fired_on() {
  std::lock_guard<std::mutex> lock(mu_);
  return fired_on_;
}

namespace {

std::string Hex(const std::string& s, bool upper) {
  // Written with / and % on purpose: g++ 12 with -fsanitize=undefined miscompiled the
  // earlier `(upper ? up : lo)[c >> 4]` (static local pointers) into wrong high digits,
  // so the ASan+UBSan build searched for the wrong hex strings.
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(digits[c / 16]);
    out.push_back(digits[c % 16]);
  }
  return out;
}

std::string Base64(const std::string& s, int variant) {
  std::string out(sodium_base64_encoded_len(s.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()),
                    s.size(), variant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> Encodings(const std::string& secret) {
  std::vector<std::pair<std::string, std::string>> out = {
      {"raw", secret},
      {"hex", Hex(secret, false)},
      {"HEX", Hex(secret, true)},
      {"base64", Base64(secret, sodium_base64_VARIANT_ORIGINAL_NO_PADDING)},
  };
  for (int variant : {sodium_base64_VARIANT_URLSAFE_NO_PADDING}) {
    const std::string enc = Base64(secret, variant);
    if (enc != out[3].second) out.emplace_back("base64url", enc);
  }
  // Inside a longer base64 stream the secret starts at byte offset 0, 1 or 2 of a
  // 3-byte group: encode it behind that many zero bytes and keep only the characters
  // that depend on the secret alone (drop the first group when shifted, and the last,
  // partial one).
  for (int shift = 0; shift < 3; ++shift) {
    for (int variant : {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_URLSAFE}) {
      const std::string padded = std::string(static_cast<size_t>(shift), '\0') + secret;
      std::string enc = Base64(padded, variant);
      const size_t full = padded.size() / 3 * 4;
      enc.resize(full);
      if (shift > 0) enc = enc.substr(4);
      const bool seen =
          std::any_of(out.begin(), out.end(), [&](const auto& e) { return e.second == enc; });
      if (enc.size() >= 16 && !seen) {
        out.emplace_back("base64+" + std::to_string(shift) +
                             (variant == sodium_base64_VARIANT_URLSAFE ? "url" : ""),
                         enc);
      }
    }
  }
  return out;
}

size_t CountSecretHits(const std::string& haystack, const std::string& where,
                       const std::map<std::string, std::string>& secrets,
                       std::vector<std::string>* hits) {
  size_t n = 0;
  for (const auto& [label, secret] : secrets) {
    for (const auto& [enc_name, enc] : Encodings(secret)) {
      if (enc.empty()) continue;
      for (size_t pos = haystack.find(enc); pos != std::string::npos;
           pos = haystack.find(enc, pos + 1)) {
        ++n;
        if (hits) hits->push_back(label + "/" + enc_name + " in " + where);
      }
    }
  }
  return n;
}

}  // namespace svmkey::reliability
