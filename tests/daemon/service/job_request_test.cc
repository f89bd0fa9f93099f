#include "daemon/service/job_request.h"

#include <gtest/gtest.h>

namespace svmkey::daemon {
namespace {

// Every kind, and the repair's dry_run, survive the job row's JSON (a job resumed at
// start runs with the request it was queued with).
TEST(JobRequestTest, EveryKindRoundTrips) {
  for (JobKind kind : {JobKind::kRekeyInternal, JobKind::kRestore, JobKind::kVerify,
                       JobKind::kKeyStoreSwitch, JobKind::kRepair}) {
    for (bool dry_run : {false, true}) {
      JobRequest in{kind, Uuid::Random(), Uuid::Random()};
      in.dry_run = dry_run;
      auto out = DecodeJobRequest(EncodeJobRequest(in));
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_EQ(out->kind, kind);
      EXPECT_EQ(out->svm, in.svm);
      EXPECT_EQ(out->config, in.config);
      EXPECT_EQ(out->dry_run, dry_run);
    }
  }
  EXPECT_EQ(Describe(JobRequest{JobKind::kRepair, Uuid::Random(), Uuid::Random()}, "vs1"),
            "repair of SVM vs1");
}

TEST(JobRequestTest, MalformedDryRunIsRefused) {
  const std::string svm = Uuid::Random().ToString(), config = Uuid::Random().ToString();
  auto out = DecodeJobRequest(R"({"kind":"repair","svm":")" + svm + R"(","config":")" + config +
                              R"(","dry_run":"yes"})");
  EXPECT_EQ(out.status().code(), ErrorCode::kEncryptionStatusUnavailable);
}

}  // namespace
}  // namespace svmkey::daemon
