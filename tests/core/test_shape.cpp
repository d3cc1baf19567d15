// harness/core/shape.h: the shape text of every message and the square-grid check of attention layouts.
#include "harness/core/shape.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

TEST(Shape, TextOfVectorsAndTensorSizesIsTheSame) {
  EXPECT_EQ(gb::shape_str(std::vector<int64_t>{320, 4, 3, 3}), "[320, 4, 3, 3]");
  EXPECT_EQ(gb::shape_str(at::zeros({2, 1, 5}).sizes()), "[2, 1, 5]");
  EXPECT_EQ(gb::shape_str(std::vector<int64_t>{}), "[]");
  EXPECT_EQ(gb::shape_str(at::zeros({}).sizes()), "[]");
}

TEST(Shape, SquareSideOnlyForPerfectSquares) {
  EXPECT_EQ(gb::square_side(4096), 64);
  EXPECT_EQ(gb::square_side(1), 1);
  EXPECT_EQ(gb::square_side(0), 0);
  EXPECT_EQ(gb::square_side(4095), -1);
  EXPECT_EQ(gb::square_side(4097), -1);
  EXPECT_EQ(gb::square_side(-4), -1);
  const int64_t big = 3037000499LL;  // the largest side whose square fits in int64
  EXPECT_EQ(gb::square_side(big * big), big);
  EXPECT_EQ(gb::square_side(big * big - 1), -1);
}
