// A small, dependency-free SVG line/scatter chart (one series per method),
// for `kiln quantize --sweep` (accuracy vs size). Opens in any browser.
// Tested in tests/unit/test_report.cpp.
#pragma once
#include <string>
#include <vector>

namespace kiln::report {

struct ChartPoint {
  double x = 0, y = 0;
  std::string label;  // drawn beside the point (e.g. "4b")
};
struct ChartSeries {
  std::string name;
  std::vector<ChartPoint> points;
};
struct Chart {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series;
  double reference_y = -1;  // a dashed horizontal line (e.g. fp32 accuracy) when >= 0
  std::string reference_label;
};

std::string render_svg(const Chart& c);

}  // namespace kiln::report
