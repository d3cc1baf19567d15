// Golden-making harness (tools/parity/crf_golden.py): runs pydensecrf's C++ core (Krähenbühl's densecrf,
// as vendored in lucasb-eyer/pydensecrf) on one scene, exactly as pydensecrf.densecrf.DenseCRF2D does:
//   d = DenseCRF2D(W, H, K); d.setUnaryEnergy(U)
//   d.addPairwiseGaussian(sxy=sg, compat=cg); d.addPairwiseBilateral(sxy=sb, srgb=sr, rgbim=im, compat=cb)
//   Q = d.inference(iters)
// (pydensecrf's Cython wrapper forwards these calls unchanged: scalars become (s, s[, s]) and `compat`
// numbers become PottsCompatibility.) Not part of the build; compiled by crf_golden.py against a
// pydensecrf checkout given on its command line.
//
// stdin:  int32 W, H, K, iters; float32 sg, cg, sb, sr, cb; float32 U[K*H*W]; uint8 im[H*W*3]
// stdout: float32 Q[K*H*W]
#include "densecrf.h"

#include <cstdint>
#include <cstdio>
#include <vector>

int main() {
  int32_t hdr[4];
  float par[5];
  if (std::fread(hdr, 4, 4, stdin) != 4 || std::fread(par, 4, 5, stdin) != 5) return 1;
  const int W = hdr[0], H = hdr[1], K = hdr[2], iters = hdr[3];
  const int N = W * H;
  // Row-major [K, N] on the wire (numpy's layout); pydensecrf copies it into a column-major MatrixXf.
  std::vector<float> buf(static_cast<size_t>(K) * N);
  if (std::fread(buf.data(), 4, buf.size(), stdin) != buf.size()) return 1;
  MatrixXf unary(K, N);
  for (int l = 0; l < K; ++l)
    for (int i = 0; i < N; ++i) unary(l, i) = buf[static_cast<size_t>(l) * N + i];
  std::vector<unsigned char> im(static_cast<size_t>(N) * 3);
  if (std::fread(im.data(), 1, im.size(), stdin) != im.size()) return 1;
  DenseCRF2D crf(W, H, K);
  crf.setUnaryEnergy(unary);
  crf.addPairwiseGaussian(par[0], par[0], new PottsCompatibility(par[1]));
  crf.addPairwiseBilateral(par[2], par[2], par[3], par[3], par[3], im.data(), new PottsCompatibility(par[4]));
  MatrixXf q = crf.inference(iters);
  for (int l = 0; l < K; ++l)
    for (int i = 0; i < N; ++i) buf[static_cast<size_t>(l) * N + i] = q(l, i);
  std::fwrite(buf.data(), 4, buf.size(), stdout);
  return 0;
}
