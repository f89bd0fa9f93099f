#include "daemon/service/control_worker.h"

namespace svmkey::daemon {

Result<std::unique_ptr<ControlWorker>> ControlWorker::Open(const table::RdbOptions& options) {
  auto rdb = table::Rdb::Open(options);
  if (!rdb.ok()) return rdb.status();
  return std::make_unique<ControlWorker>(std::move(rdb).value());
}

ControlWorker::ControlWorker(std::unique_ptr<table::Rdb> rdb) : rdb_(std::move(rdb)) {
  thread_ = std::thread([this] {
    for (;;) {
      std::function<void(table::Rdb&)> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task(*rdb_);
    }
  });
}

ControlWorker::~ControlWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ControlWorker::Submit(std::function<void(table::Rdb&)> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

}  // namespace svmkey::daemon
