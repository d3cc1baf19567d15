#pragma once
// `goca-bench merge`: sums the partial results of shards 0..n-1 of one run into the results of the whole
// run. Confusion matrices, image counts and diagnostics are sums, so accuracy is identical to a single
// process; timings add up per stage (wall time is the longest shard), peak memory is the maximum. Generation cells
// add their image counts and CLIP sums; their FID is left NaN here: it needs the shards' feature-sum files and the
// reference statistics (gb::runner::merge_generation_sums, which `goca-bench merge` calls next).
#include "reports/results.h"

#include <vector>

namespace gb::reports {

// Throws UserError when the inputs are not the complete, disjoint set of shards of one run.
Results merge_results(const std::vector<Results>& shards, const std::vector<std::string>& sources);

}  // namespace gb::reports
