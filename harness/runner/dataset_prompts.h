#pragma once
// The prompts of an open dataset for one backbone: per image (caption -> prompt and token groups, integration.h),
// and, for a backbone whose text encoders are freed before capturing (text_encoder: free), every prompt of the
// shard encoded up front.
#include "datasets/captions.h"
#include "harness/core/backbone.h"
#include "harness/runner/integration.h"
#include "harness/runner/open_datasets.h"
#include "reports/results.h"

#include <map>
#include <string>
#include <vector>

namespace gb::runner {

// The dataset's caption file; UserError "dataset '<name>': no caption file configured (`captions:`)" without one.
const gb::datasets::CaptionFile& dataset_captions(const OpenDataset& dataset);

// The prompt of one loaded image of the dataset.
PreparedPrompt dataset_prompt(const OpenDataset& dataset, const gb::text::PromptBuilder& builder,
                              const gb::datasets::Sample& sample);

// Builds the prompt of every image of the shard in every dataset (images loaded in parallel; skipped images have
// none), hands them all to backbone.prepare_prompts in one call, and charges the seconds to each
// "<dataset>|<backbone_name>" timing's "text" stage in proportion to its prompts.
void preencode_prompts(gb::Backbone& backbone, const std::string& backbone_name,
                       const std::vector<OpenDataset>& datasets, int64_t shard_index, int64_t shard_count,
                       int64_t batch_size, std::map<std::string, gb::reports::StageTimes>& timings);

}  // namespace gb::runner
