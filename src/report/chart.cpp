#include "report/chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kiln::report {
namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '<') o += "&lt;";
    else if (ch == '>') o += "&gt;";
    else if (ch == '&') o += "&amp;";
    else if (ch == '"') o += "&quot;";
    else o += ch;
  }
  return o;
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// "Nice" tick step covering span with about n ticks.
double tick_step(double span, int n) {
  double raw = span / n, mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

}  // namespace

std::string render_svg(const Chart& c) {
  const double W = 840, H = 480, L = 80, R = 250, T = 50, B = 60;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& s : c.series)
    for (const auto& p : s.points) {
      x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
      y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
    }
  if (c.reference_y >= 0) y0 = std::min(y0, c.reference_y), y1 = std::max(y1, c.reference_y);
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 - x0 < 1e-12) x0 -= 1, x1 += 1;
  if (y1 - y0 < 1e-12) y0 -= 1, y1 += 1;
  double xs = tick_step(x1 - x0, 6), ys = tick_step(y1 - y0, 6);
  x0 = std::floor(x0 / xs) * xs, x1 = std::ceil(x1 / xs) * xs;
  y0 = std::floor(y0 / ys) * ys, y1 = std::ceil(y1 / ys) * ys;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"};

  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(W) + "\" height=\"" + num(H) +
                  "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text x=\"" + num(W / 2) + "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">" + esc(c.title) + "</text>\n";
  for (double x = x0; x <= x1 + xs / 2; x += xs) {
    s += "<line x1=\"" + num(px(x)) + "\" y1=\"" + num(T) + "\" x2=\"" + num(px(x)) + "\" y2=\"" + num(H - B) +
         "\" stroke=\"#eee\"/>\n";
    s += "<text x=\"" + num(px(x)) + "\" y=\"" + num(H - B + 18) + "\" text-anchor=\"middle\">" + num(x) + "</text>\n";
  }
  for (double y = y0; y <= y1 + ys / 2; y += ys) {
    s += "<line x1=\"" + num(L) + "\" y1=\"" + num(py(y)) + "\" x2=\"" + num(W - R) + "\" y2=\"" + num(py(y)) +
         "\" stroke=\"#eee\"/>\n";
    s += "<text x=\"" + num(L - 8) + "\" y=\"" + num(py(y) + 4) + "\" text-anchor=\"end\">" + num(y) + "</text>\n";
  }
  s += "<rect x=\"" + num(L) + "\" y=\"" + num(T) + "\" width=\"" + num(W - L - R) + "\" height=\"" + num(H - T - B) +
       "\" fill=\"none\" stroke=\"#333\"/>\n";
  s += "<text x=\"" + num((L + W - R) / 2) + "\" y=\"" + num(H - 18) + "\" text-anchor=\"middle\">" + esc(c.x_label) + "</text>\n";
  s += "<text transform=\"translate(20," + num((T + H - B) / 2) + ") rotate(-90)\" text-anchor=\"middle\">" + esc(c.y_label) + "</text>\n";
  if (c.reference_y >= 0) {
    s += "<line x1=\"" + num(L) + "\" y1=\"" + num(py(c.reference_y)) + "\" x2=\"" + num(W - R) + "\" y2=\"" +
         num(py(c.reference_y)) + "\" stroke=\"#555\" stroke-dasharray=\"6,4\"/>\n";
    s += "<text x=\"" + num(W - R - 4) + "\" y=\"" + num(py(c.reference_y) - 6) + "\" text-anchor=\"end\" fill=\"#555\">" +
         esc(c.reference_label) + "</text>\n";
  }
  for (size_t i = 0; i < c.series.size(); ++i) {
    const auto& ser = c.series[i];
    std::string color = colors[i % 10];
    auto pts = ser.points;
    std::sort(pts.begin(), pts.end(), [](const ChartPoint& a, const ChartPoint& b) { return a.x < b.x; });
    std::string path;
    for (const auto& p : pts) path += (path.empty() ? "M" : " L") + num(px(p.x)) + "," + num(py(p.y));
    s += "<path d=\"" + path + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"2\"/>\n";
    for (const auto& p : pts) {
      s += "<circle cx=\"" + num(px(p.x)) + "\" cy=\"" + num(py(p.y)) + "\" r=\"4\" fill=\"" + color + "\"><title>" +
           esc(ser.name + " " + p.label + ": " + num(p.y) + " at " + num(p.x)) + "</title></circle>\n";
      if (!p.label.empty())
        s += "<text x=\"" + num(px(p.x) + 6) + "\" y=\"" + num(py(p.y) - 6) + "\" fill=\"" + color + "\" font-size=\"10\">" +
             esc(p.label) + "</text>\n";
    }
    double ly = T + 16 + 20 * double(i);
    s += "<rect x=\"" + num(W - R + 16) + "\" y=\"" + num(ly - 9) + "\" width=\"12\" height=\"12\" fill=\"" + color + "\"/>\n";
    s += "<text x=\"" + num(W - R + 34) + "\" y=\"" + num(ly + 1) + "\">" + esc(ser.name) + "</text>\n";
  }
  return s + "</svg>\n";
}

}  // namespace kiln::report
