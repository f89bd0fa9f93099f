// Helpers shared by the reliability suite (tests/reliability): the key-hierarchy
// invariant after a crash, table dumps and file hashes for "nothing changed" checks,
// a kill switch that kill -9s svmkeyd the instant a job signal matches, and secret
// searches in every encoding the code could produce.
//
// Threads: everything runs on the test's main thread except KillSwitch's callback,
// which runs on the sdbus connection's event-loop thread.
#pragma once

#include <sdbus-c++/sdbus-c++.h>
#include <signal.h>
#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tests/integration/daemon_fixture.h"

namespace svmkey::reliability {

using integration::VolumeFingerprints;

// The invariant of docs/ARCHITECTURE.md §7 after a rekey to `generation`, checked three ways: the
// table (one active SVM-KEK, of `generation`; no pending one; key store active; every
// volume row at `generation`), the files (every file's current slot, the valid slot with
// the highest sequence, is at `generation`), and the keys (every VDEK opens under the
// SVM-KEK of `generation` unwrapped with the Barbican key, with the fingerprint it had
// before the first rekey). Returns "" when it holds, else what is wrong.
std::string CheckInvariant(const std::string& table_path, const std::string& svm,
                           const std::string& config, uint64_t generation,
                           const std::string& kek_file, const VolumeFingerprints& original,
                           const std::array<uint8_t, 32>& fingerprint_key);

// The newest valid slot's generation of every metadata file of `svm` (table order);
// 0 for a file that does not decode or has no valid slot.
std::vector<uint64_t> CurrentSlotGenerations(const std::string& table_path, const std::string& svm);

// `sqlite3 path .dump` (a consistent read of the WAL database), without the lines of the
// tables in `exclude`.
std::string DumpTable(const std::string& table_path, const std::vector<std::string>& exclude = {});

// BLAKE2b of every regular file under `dir`, by path.
std::map<std::string, std::string> HashTree(const std::string& dir);

// Sends SIGKILL to `pid` from the signal thread the moment a PropertiesChanged of
// org.svmkey.Job1 satisfies the predicate (arguments: property name, string value).
class KillSwitch {
 public:
  explicit KillSwitch(sdbus::IConnection& connection);
  ~KillSwitch();
  // With kill == false the switch only records that the predicate matched (the caller
  // then kills after a delay of its own).
  void Arm(pid_t pid, std::function<bool(const std::string&, const std::string&)> pred,
           bool kill = true);
  void Disarm();
  bool fired() const { return fired_.load(); }
  std::string fired_on();  // "Property=value" that fired it

 private:
  std::mutex mu_;
  pid_t pid_ = -1;
  bool kill_ = true;
  std::function<bool(const std::string&, const std::string&)> pred_;
  std::atomic<bool> fired_{false};
  std::string fired_on_;
  sdbus::Slot slot_;
};

// Encodings a secret could leak in: raw bytes, lower and upper hex, standard and URL-safe
// base64 (with and without padding), and base64 at each of the three byte offsets a
// secret embedded in a longer base64 stream can start at (the stable middle part).
std::vector<std::pair<std::string, std::string>> Encodings(const std::string& secret);

// Counts occurrences of every encoding of every secret in `haystack`; names the hits in
// *hits ("<secret label>/<encoding> in <where>").
size_t CountSecretHits(const std::string& haystack, const std::string& where,
                       const std::map<std::string, std::string>& secrets,
                       std::vector<std::string>* hits);

}  // namespace svmkey::reliability
