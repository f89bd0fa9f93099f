// RekeyInternal, Restore, VerifyVolumes, RepairVolumes: the methods that start a job
// and reply when it ends or when return_timeout passes (202 and the job's uuid), per
// ipc/org.svmkey.KeyManager1.xml.
#include <chrono>

#include "daemon/bus/handlers.h"

namespace svmkey::daemon::rekey_bus {
namespace {

constexpr uint32_t kMaxReturnTimeout = 120;  // seconds

std::chrono::seconds ReturnTimeout(uint32_t value) {
  if (value > kMaxReturnTimeout) {
    Throw(ErrorCode::kInvalidValue,
          "return_timeout " + std::to_string(value) + " is out of range 0..120 seconds");
  }
  return std::chrono::seconds(value);
}

// Queues the job and replies: 202 at once for a return_timeout of 0, else when the job
// ends (201, or its error) or when the timeout passes first (202).
void StartJob(BusContext& bus, JobReply&& reply, const JobRequest& request,
              uint32_t return_timeout, const Caller& caller) {
  const auto timeout = ReturnTimeout(return_timeout);
  const Uuid job = Check(bus.launcher.Queue(bus.rdb, request, caller.uid));
  if (return_timeout == 0) return reply.returnResults(202u, job.ToString());
  auto result = std::make_shared<JobReply>(std::move(reply));
  bus.jobs.Wait(job, timeout,
                [result](uint32_t status, const std::string& uuid, const Status& failure) {
                  if (!failure.ok()) return ReplyError(*result, failure);
                  result->returnResults(status, uuid);
                });
}

}  // namespace

void RekeyInternal(BusContext& bus, JobReply&& result, const std::string& uuid,
                   uint32_t return_timeout) {
  const Caller caller = bus.Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  ReturnTimeout(return_timeout);
  const JobRequest request = Check(RekeyInternalRequest(bus.rdb, config));
  StartJob(bus, std::move(result), request, return_timeout, caller);
}

void Restore(BusContext& bus, JobReply&& result, const std::string& uuid, uint32_t return_timeout) {
  const Caller caller = bus.Authorize();
  const Uuid config = RequireUuid(uuid, "uuid");
  ReturnTimeout(return_timeout);
  const JobRequest request = Check(RestoreRequest(bus.rdb, config));
  StartJob(bus, std::move(result), request, return_timeout, caller);
}

void VerifyVolumes(BusContext& bus, JobReply&& result, const std::string& svm,
                   uint32_t return_timeout) {
  const Caller caller = bus.Authorize();
  const Uuid svm_uuid = bus.ResolveSvm(svm);
  ReturnTimeout(return_timeout);
  const JobRequest request = Check(VerifyRequest(bus.rdb, svm_uuid));
  StartJob(bus, std::move(result), request, return_timeout, caller);
}

void RepairVolumes(BusContext& bus, JobReply&& result, const std::string& svm,
                   const VariantMap& options) {
  const Caller caller = bus.Authorize();
  const Uuid svm_uuid = bus.ResolveSvm(svm);
  OptionReader o(options);
  const auto return_timeout =
      static_cast<uint32_t>(o.Unsigned("return_timeout", 0, kMaxReturnTimeout).value_or(0));
  const bool dry_run = o.Bool("dry_run").value_or(false);
  o.Finish();
  const JobRequest request = Check(RepairRequest(bus.rdb, svm_uuid, dry_run));
  StartJob(bus, std::move(result), request, return_timeout, caller);
}

}  // namespace svmkey::daemon::rekey_bus
