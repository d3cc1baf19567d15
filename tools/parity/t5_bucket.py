"""transformers T5Attention._relative_position_bucket (bidirectional), shared by the T5 reference code of
dit_goldens.py and int8_goldens.py."""
import math

import torch


def t5_bucket(rel_pos, num_buckets, max_distance):
    num_buckets //= 2
    buckets = (rel_pos > 0).to(torch.long) * num_buckets
    n = torch.abs(rel_pos)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    large = max_exact + (torch.log(n.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, n, large)
