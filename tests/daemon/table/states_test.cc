#include "daemon/table/states.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
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

// The Phase property's documentation lists exactly the names the daemon emits:
// PhaseName of phases 1..7, and "queued" for a job that has not started (row_maps.cc).
TEST(StatesTest, Job1XmlDocumentsExactlyTheEmittedPhaseNames) {
  const char* xml_path = std::getenv("SVMKEY_JOB1_XML");
  ASSERT_NE(xml_path, nullptr);
  std::ifstream in(xml_path);
  ASSERT_TRUE(in) << xml_path;
  std::stringstream text;
  text << in.rdbuf();
  const std::string xml = text.str();
  const size_t comment = xml.find("<!-- Phase:");
  ASSERT_NE(comment, std::string::npos);
  const std::string marker = "one of (";
  const size_t open = xml.find(marker, comment);
  const size_t close = xml.find(')', open);
  ASSERT_NE(open, std::string::npos);
  ASSERT_NE(close, std::string::npos);
  std::set<std::string> documented;
  std::string list = xml.substr(open + marker.size(), close - open - marker.size());
  for (char& c : list) {
    if (c == ',' || c == '\n') c = ' ';
  }
  std::istringstream words(list);
  for (std::string w; words >> w;) documented.insert(w);
  std::set<std::string> emitted = {"queued"};
  for (int p = kPhasePrechecks; p <= kPhaseInstall; ++p) emitted.insert(std::string(PhaseName(p)));
  EXPECT_EQ(documented, emitted);
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
