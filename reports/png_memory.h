#pragma once
// In-memory PNG encoding (libspng) and base64, for the example overlays embedded in results.json and
// report.html.
#include <cstdint>
#include <string>
#include <vector>

namespace gb::reports {

// rgb: height*width*3 bytes, row-major.
std::vector<uint8_t> encode_png_rgb(const std::vector<uint8_t>& rgb, int64_t width, int64_t height);
std::string base64_encode(const std::vector<uint8_t>& bytes);
std::vector<uint8_t> base64_decode(const std::string& text);  // throws UserError on bad input

}  // namespace gb::reports
