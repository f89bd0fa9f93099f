// Runs one benchmark run in a forked child, so that peak RSS (ru_maxrss) and CPU time
// (user + sys) are those of that run alone, not of the whole benchmark.
//
// The child inherits the parent's memory (including the KeyTable holding the SVM-KEKs,
// addressed by the same handles), runs `body`, sends back what it measured through a
// pipe and leaves with _exit. The parent reads it and collects the child's rusage with
// wait4, which also covers the child's own waited-for children (fio).
//
// Call only from a single-threaded parent.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "engine/status.h"

namespace svmkey::bench {

// What a run's body measures itself: the wall time of the timed region and how many
// volumes it processed in it.
struct TimedWork {
  double seconds = 0;
  uint64_t volumes = 0;
};

struct ChildOutcome {
  Status status;        // the body's failure, or a failure to run / collect the child
  TimedWork work;
  long peak_rss_kib = 0;  // ru_maxrss of the child (and its waited-for children)
  double cpu_seconds = 0;  // ru_utime + ru_stime, same scope
};

ChildOutcome RunMeasuredChild(const std::function<Result<TimedWork>()>& body);

}  // namespace svmkey::bench
