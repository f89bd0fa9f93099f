#include "daemon/table/states.h"

#include <array>
#include <utility>

namespace svmkey::table {
namespace {

template <typename E, size_t N>
using Table = std::array<std::pair<E, std::string_view>, N>;

constexpr Table<SvmKind, 2> kSvmKinds{{{SvmKind::kAdmin, "admin"}, {SvmKind::kData, "data"}}};
constexpr Table<KeyStoreState, 6> kKeyStoreStates{{
    {KeyStoreState::kActive, "active"},
    {KeyStoreState::kInitializing, "initializing"},
    {KeyStoreState::kDisabling, "disabling"},
    {KeyStoreState::kSwitching, "switching"},
    {KeyStoreState::kBlocked, "blocked"},
    {KeyStoreState::kSvmKekRekey, "svm_kek_rekey"},
}};
constexpr Table<SvmKekState, 3> kKekStates{{{SvmKekState::kPending, "pending"},
                                            {SvmKekState::kActive, "active"},
                                            {SvmKekState::kRetired, "retired"}}};
constexpr Table<KeyManager, 2> kKeyManagers{
    {{KeyManager::kData, "data"}, {KeyManager::kAdmin, "admin"}}};
constexpr Table<JobState, 5> kJobStates{{{JobState::kQueued, "queued"},
                                         {JobState::kRunning, "running"},
                                         {JobState::kPaused, "paused"},
                                         {JobState::kSuccess, "success"},
                                         {JobState::kFailure, "failure"}}};

template <typename E, size_t N>
std::string_view Find(const Table<E, N>& t, E v) {
  for (const auto& [e, s] : t) {
    if (e == v) return s;
  }
  return "unknown";
}

template <typename E, size_t N>
std::optional<E> Parse(const Table<E, N>& t, std::string_view s) {
  for (const auto& [e, name] : t) {
    if (name == s) return e;
  }
  return std::nullopt;
}

}  // namespace

std::string_view ToString(SvmKind v) { return Find(kSvmKinds, v); }
std::string_view ToString(KeyStoreState v) { return Find(kKeyStoreStates, v); }
std::string_view ToString(SvmKekState v) { return Find(kKekStates, v); }
std::string_view ToString(KeyManager v) { return Find(kKeyManagers, v); }
std::string_view ToString(JobState v) { return Find(kJobStates, v); }

std::optional<SvmKind> SvmKindFromString(std::string_view s) { return Parse(kSvmKinds, s); }
std::optional<KeyStoreState> KeyStoreStateFromString(std::string_view s) {
  return Parse(kKeyStoreStates, s);
}
std::optional<SvmKekState> SvmKekStateFromString(std::string_view s) {
  return Parse(kKekStates, s);
}
std::optional<KeyManager> KeyManagerFromString(std::string_view s) {
  return Parse(kKeyManagers, s);
}
std::optional<JobState> JobStateFromString(std::string_view s) { return Parse(kJobStates, s); }

bool IsTerminal(JobState s) { return s == JobState::kSuccess || s == JobState::kFailure; }

bool IsAllowedTransition(KeyStoreState from, KeyStoreState to) {
  using S = KeyStoreState;
  if (from == to) return true;
  switch (from) {
    case S::kInitializing:
      return to == S::kActive || to == S::kBlocked || to == S::kDisabling;
    case S::kActive:
      return to == S::kSwitching || to == S::kSvmKekRekey || to == S::kBlocked ||
             to == S::kDisabling;
    case S::kSwitching:
    case S::kSvmKekRekey:
      return to == S::kActive || to == S::kBlocked;
    case S::kBlocked:
      return to == S::kActive || to == S::kDisabling;
    case S::kDisabling:
      return to == S::kActive;
  }
  return false;
}

bool IsAllowedTransition(JobState from, JobState to) {
  using S = JobState;
  switch (from) {
    case S::kQueued:
      return to == S::kRunning || to == S::kPaused || IsTerminal(to);
    case S::kRunning:
      return to == S::kPaused || IsTerminal(to);
    case S::kPaused:
      return to == S::kRunning || IsTerminal(to);
    case S::kSuccess:
    case S::kFailure:
      return false;
  }
  return false;
}

std::string_view PhaseName(int phase) {
  static constexpr std::array<std::string_view, 8> kNames = {
      "not_started",    "prechecks",  "unwrap_current", "store_pending",
      "rewrap_volumes", "durability", "commit",         "install"};
  if (phase < 0 || phase >= static_cast<int>(kNames.size())) return "unknown";
  return kNames[static_cast<size_t>(phase)];
}

}  // namespace svmkey::table
