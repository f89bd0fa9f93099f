#include "daemon/table/states.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <utility>

namespace svmkey::table {
namespace {

TEST(StatesTest, EveryEnumRoundTripsThroughItsOntapSpelling) {
  for (KeyStoreState s : kAllKeyStoreStates) {
    EXPECT_EQ(KeyStoreStateFromString(ToString(s)), s);
  }
  for (JobState s : kAllJobStates) EXPECT_EQ(JobStateFromString(ToString(s)), s);
  EXPECT_EQ(ToString(KeyStoreState::kSvmKekRekey), "svm_kek_rekey");
  EXPECT_EQ(ToString(JobState::kFailure), "failure");
  EXPECT_EQ(SvmKindFromString("admin"), SvmKind::kAdmin);
  EXPECT_EQ(SvmKekStateFromString("retired"), SvmKekState::kRetired);
  EXPECT_EQ(KeyManagerFromString("admin"), KeyManager::kAdmin);
  EXPECT_FALSE(KeyStoreStateFromString("mixed").has_value());
  EXPECT_FALSE(JobStateFromString("error").has_value());  // ONTAP's schema says failure
}

TEST(StatesTest, KeyStoreTransitionsMatchTheStateMachine) {
  using S = KeyStoreState;
  const std::set<std::pair<S, S>> allowed = {
      {S::kInitializing, S::kActive}, {S::kInitializing, S::kBlocked},
      {S::kInitializing, S::kDisabling}, {S::kActive, S::kSwitching},
      {S::kActive, S::kSvmKekRekey},  {S::kActive, S::kBlocked},
      {S::kActive, S::kDisabling},    {S::kSwitching, S::kActive},
      {S::kSwitching, S::kBlocked},   {S::kSvmKekRekey, S::kActive},
      {S::kSvmKekRekey, S::kBlocked}, {S::kBlocked, S::kActive},
      {S::kBlocked, S::kDisabling},   {S::kDisabling, S::kActive},
  };
  for (S from : kAllKeyStoreStates) {
    for (S to : kAllKeyStoreStates) {
      const bool expected = from == to || allowed.count({from, to}) != 0;
      EXPECT_EQ(IsAllowedTransition(from, to), expected)
          << ToString(from) << " -> " << ToString(to);
    }
  }
}

TEST(StatesTest, JobTransitionsMatchTheStateMachine) {
  using S = JobState;
  const std::set<std::pair<S, S>> allowed = {
      {S::kQueued, S::kRunning},  {S::kQueued, S::kSuccess},  {S::kQueued, S::kFailure},
      {S::kQueued, S::kPaused},
      {S::kRunning, S::kPaused},  {S::kRunning, S::kSuccess}, {S::kRunning, S::kFailure},
      {S::kPaused, S::kRunning},  {S::kPaused, S::kSuccess},  {S::kPaused, S::kFailure},
  };
  for (S from : kAllJobStates) {
    for (S to : kAllJobStates) {
      EXPECT_EQ(IsAllowedTransition(from, to), allowed.count({from, to}) != 0)
          << ToString(from) << " -> " << ToString(to);
    }
  }
  EXPECT_TRUE(IsTerminal(S::kSuccess));
  EXPECT_TRUE(IsTerminal(S::kFailure));
  EXPECT_FALSE(IsTerminal(S::kPaused));
}

TEST(StatesTest, PhaseNamesFollowDesignSection7) {
  EXPECT_EQ(PhaseName(kPhasePrechecks), "prechecks");
  EXPECT_EQ(PhaseName(kPhaseStorePending), "store_pending");
  EXPECT_EQ(PhaseName(kPhaseCommit), "commit");
  EXPECT_EQ(PhaseName(kPhaseInstall), "install");
  EXPECT_EQ(PhaseName(8), "unknown");
  EXPECT_EQ(PhaseName(-1), "unknown");
}

}  // namespace
}  // namespace svmkey::table
