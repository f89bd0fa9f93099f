// The enums stored as text in the table, each with one string table used both ways
// (like systemd's *_to_string / *_from_string). The strings are the ONTAP spellings
// and are part of the file format: never rename one.
#pragma once

#include <optional>
#include <string_view>

namespace svmkey::table {

enum class SvmKind { kAdmin, kData };
enum class KeyStoreState { kActive, kInitializing, kDisabling, kSwitching, kBlocked, kSvmKekRekey };
enum class SvmKekState { kPending, kActive, kRetired };
enum class KeyManager { kData, kAdmin };  // whose key manager holds a volume's VDEK
enum class JobState { kQueued, kRunning, kPaused, kSuccess, kFailure };

std::string_view ToString(SvmKind v);
std::string_view ToString(KeyStoreState v);
std::string_view ToString(SvmKekState v);
std::string_view ToString(KeyManager v);
std::string_view ToString(JobState v);

std::optional<SvmKind> SvmKindFromString(std::string_view s);
std::optional<KeyStoreState> KeyStoreStateFromString(std::string_view s);
std::optional<SvmKekState> SvmKekStateFromString(std::string_view s);
std::optional<KeyManager> KeyManagerFromString(std::string_view s);
std::optional<JobState> JobStateFromString(std::string_view s);

inline constexpr KeyStoreState kAllKeyStoreStates[] = {
    KeyStoreState::kActive,   KeyStoreState::kInitializing, KeyStoreState::kDisabling,
    KeyStoreState::kSwitching, KeyStoreState::kBlocked,     KeyStoreState::kSvmKekRekey};
inline constexpr JobState kAllJobStates[] = {JobState::kQueued, JobState::kRunning,
                                             JobState::kPaused, JobState::kSuccess,
                                             JobState::kFailure};

bool IsTerminal(JobState s);

// Key-store state machine (ONTAP's barbican-kms semantics). Staying in a state is
// always allowed (re-running a stuck operation re-asserts its state).
//   initializing → active | blocked | disabling
//   active       → switching | svm_kek_rekey | blocked | disabling
//   switching    → active | blocked            (re-running the enable resumes it)
//   svm_kek_rekey→ active | blocked            (commit, or a failure that leaves it)
//   blocked      → active | disabling          (the Barbican key is usable again)
//   disabling    → active                      (a disable that was given up)
bool IsAllowedTransition(KeyStoreState from, KeyStoreState to);

// Job state machine (ONTAP's job states): queued → running | paused | success | failure;
// running ↔ paused; running | paused → success | failure; terminal states are final.
bool IsAllowedTransition(JobState from, JobState to);

// docs/ARCHITECTURE.md §7 phases of rekey-internal (0 = not started).
inline constexpr int kPhasePrechecks = 1;
inline constexpr int kPhaseUnwrapCurrent = 2;
inline constexpr int kPhaseStorePending = 3;
inline constexpr int kPhaseRewrap = 4;
inline constexpr int kPhaseDurability = 5;
inline constexpr int kPhaseCommit = 6;
inline constexpr int kPhaseInstall = 7;
std::string_view PhaseName(int phase);  // "prechecks", ..., "unknown"

}  // namespace svmkey::table
