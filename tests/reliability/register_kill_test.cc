// kill -9 of svmkeyd during RegisterVolumeSet of a large set (~10^5 volumes; issue 14,
// item 6): the SVM-KEK and every volume row are inserted in one transaction
// (SvmKekTable::InsertInitialActiveWithVolumes), so after each kill and restart the SVM
// has either no SVM-KEK and no volume rows, or the SVM-KEK and every row; a rerun of the
// same registration after a kill that left nothing succeeds.
//
// SVMKEY_REGISTER_KILL_VOLUMES (default 100000) sets the size of the set.
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tests/reliability/reliability_util.h"

namespace svmkey::reliability {
namespace {

using namespace std::chrono_literals;
using integration::DaemonTest;
using integration::SvmSetup;
using integration::TableFile;

class RegisterKillTest : public DaemonTest {
 protected:
  // (SVM-KEK rows, volume rows) of the SVM, read from the table file.
  std::pair<int64_t, int64_t> Registered(const std::string& svm_uuid) {
    TableFile t(daemon().table_path());
    EXPECT_TRUE(t.ok());
    const auto keks = t.QueryInt("SELECT count(*) FROM svm_keks WHERE svm_uuid = ?", {svm_uuid});
    const auto rows = t.QueryInt("SELECT count(*) FROM volumes WHERE svm_uuid = ?", {svm_uuid});
    return {keks.value_or(-1), rows.value_or(-1)};
  }
};

TEST_F(RegisterKillTest, KillNineMidRegistrationLeavesNothingOrEverything) {
  const char* env = std::getenv("SVMKEY_REGISTER_KILL_VOLUMES");
  const int64_t volumes = env && *env ? std::stoll(env) : 100000;
  const SvmSetup s = SetUpSvm("vs1");
  const std::string set = MakeVolumeSet(s.svm_uuid, static_cast<uint64_t>(volumes));

  bool completed = false;
  int left_nothing = 0;
  // Instants after the call is sent: before the manifest is read, during the check
  // pass, during the transaction, and (on a fast machine) after the commit.
  for (const auto delay : {0ms, 150ms, 400ms, 900ms, 1600ms, 2500ms}) {
    SCOPED_TRACE("kill after " + std::to_string(delay.count()) + " ms");
    std::thread call([&] {
      try {
        RegisterVolumeSet("vs1", set);
      } catch (const sdbus::Error&) {
        // The daemon died under the call: no reply.
      }
    });
    std::this_thread::sleep_for(delay);
    daemon().Kill9();
    call.join();
    StartDaemonAgain();
    const auto [keks, rows] = Registered(s.svm_uuid);
    if (keks == 0) {
      EXPECT_EQ(rows, 0) << "volume rows without an SVM-KEK";
      ++left_nothing;
    } else {
      EXPECT_EQ(keks, 1);
      EXPECT_EQ(rows, volumes) << "an SVM-KEK with only some of the volumes";
      completed = true;
      break;
    }
  }
  std::printf("[register-kill] %d kills left nothing; %s\n", left_nothing,
              completed ? "one landed after the commit" : "none landed after the commit");
  EXPECT_GT(left_nothing, 0) << "no kill landed before the commit";
  if (!completed) {
    // A rerun of the very same registration completes it.
    EXPECT_EQ(RegisterVolumeSet("vs1", set), static_cast<uint64_t>(volumes)) << DaemonLog();
    EXPECT_EQ(Registered(s.svm_uuid), std::make_pair(int64_t{1}, volumes));
  }
  EXPECT_NE(daemon().log().find("registered " + std::to_string(volumes) + " volumes"),
            std::string::npos);
}

}  // namespace
}  // namespace svmkey::reliability
