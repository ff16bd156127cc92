// tests/common/prom_text.hpp — a checker for the Prometheus text exposition format 0.0.4, as
// the format's specification states it: metric and label names, label value escapes (\\, \",
// \n only), sample values (floats, +Inf, -Inf, NaN), at most one HELP and TYPE per metric, TYPE
// before the metric's samples, no duplicate series, and for histograms: cumulative buckets
// that never decrease, a +Inf bucket equal to _count, and _sum/_count present.
#pragma once

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace taskpool::test {

struct PromScrape {
  std::map<std::string, double> samples;   // "name{a=\"x\",b=\"y\"}" (labels as written) -> value
  std::map<std::string, std::string> types;  // metric family -> type
  std::vector<std::string> errors;         // empty: the text parses by the rules
  double value(const std::string& series, double missing = NAN) const {
    auto it = samples.find(series);
    return it == samples.end() ? missing : it->second;
  }
};

inline PromScrape parse_prometheus(const std::string& text) {
  PromScrape out;
  auto err = [&](std::size_t line, const std::string& what) { out.errors.push_back("line " + std::to_string(line) + ": " + what); };
  auto name_start = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; };
  auto name_char = [&](char c) { return name_start(c) || std::isdigit(static_cast<unsigned char>(c)); };
  std::set<std::string> helped, seen_samples_of;
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;  // histogram series prefix -> (le, count)
  std::map<std::string, double> counts;
  std::size_t ln = 0, pos = 0;
  if (!text.empty() && text.back() != '\n') err(0, "the text must end with a newline");
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    ++ln;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::string rest = line.substr(1);
      if (rest.rfind(" HELP ", 0) == 0 || rest.rfind(" TYPE ", 0) == 0) {
        bool help = rest[1] == 'H';
        std::string body = rest.substr(6);
        auto sp = body.find(' ');
        std::string name = body.substr(0, sp);
        if (name.empty() || !name_start(name[0])) err(ln, "bad metric name in comment");
        for (char c : name)
          if (!name_char(c)) err(ln, "bad metric name '" + name + "'");
        if (help) {
          if (!helped.insert(name).second) err(ln, "second HELP for " + name);
        } else {
          std::string type = sp == std::string::npos ? "" : body.substr(sp + 1);
          if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" && type != "untyped")
            err(ln, "bad type '" + type + "'");
          if (out.types.count(name)) err(ln, "second TYPE for " + name);
          if (seen_samples_of.count(name)) err(ln, "TYPE after samples of " + name);
          out.types[name] = type;
        }
      }
      continue;
    }
    std::size_t i = 0;
    if (!name_start(line[0])) {
      err(ln, "sample does not start with a metric name");
      continue;
    }
    while (i < line.size() && name_char(line[i])) ++i;
    std::string name = line.substr(0, i);
    std::string series = name, le;
    if (i < line.size() && line[i] == '{') {
      series += '{';
      ++i;
      bool first = true;
      while (i < line.size() && line[i] != '}') {
        if (!first) {
          if (line[i] != ',') {
            err(ln, "expected ',' between labels");
            break;
          }
          series += ',';
          ++i;
        }
        first = false;
        std::size_t ls = i;
        if (i >= line.size() || !(std::isalpha(static_cast<unsigned char>(line[i])) || line[i] == '_')) err(ln, "bad label name");
        while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_')) ++i;
        std::string lname = line.substr(ls, i - ls);
        if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
          err(ln, "expected =\" after label " + lname);
          break;
        }
        i += 2;
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') {
            if (i + 1 >= line.size() || (line[i + 1] != '\\' && line[i + 1] != '"' && line[i + 1] != 'n')) err(ln, "bad escape");
            value += line[i + 1];
            i += 2;
          } else {
            value += line[i++];
          }
        }
        if (i >= line.size()) {
          err(ln, "unterminated label value");
          break;
        }
        ++i;
        if (lname == "le") le = value;
        series += lname + "=\"" + value + "\"";
      }
      if (i >= line.size()) {
        err(ln, "unterminated label set");
        continue;
      }
      ++i;
      series += '}';
    }
    if (i >= line.size() || line[i] != ' ') {
      err(ln, "expected a space before the value");
      continue;
    }
    std::string vtext = line.substr(i + 1);
    if (auto sp = vtext.find(' '); sp != std::string::npos) vtext = vtext.substr(0, sp);  // timestamp follows
    double v = 0;
    if (vtext == "+Inf") v = INFINITY;
    else if (vtext == "-Inf") v = -INFINITY;
    else if (vtext == "NaN") v = NAN;
    else {
      char* end = nullptr;
      v = std::strtod(vtext.c_str(), &end);
      if (vtext.empty() || *end != '\0') err(ln, "bad value '" + vtext + "'");
    }
    if (!out.samples.emplace(series, v).second) err(ln, "duplicate series " + series);
    std::string family = name;
    for (const char* suf : {"_bucket", "_sum", "_count"}) {
      std::string s = suf;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
          out.types.count(name.substr(0, name.size() - s.size())) &&
          out.types[name.substr(0, name.size() - s.size())] == "histogram")
        family = name.substr(0, name.size() - s.size());
    }
    seen_samples_of.insert(family);
    if (!out.types.count(family)) err(ln, "sample of " + family + " without a TYPE line");
    if (out.types.count(family) && out.types[family] == "histogram") {
      if (name == family + "_bucket") {
        if (le.empty()) err(ln, "bucket without le");
        buckets[family].push_back({le == "+Inf" ? INFINITY : std::strtod(le.c_str(), nullptr), v});
      } else if (name == family + "_count") {
        counts[family] = v;
      }
    }
  }
  for (auto& [family, bs] : buckets) {
    for (std::size_t k = 1; k < bs.size(); ++k) {
      if (bs[k].first <= bs[k - 1].first) out.errors.push_back(family + ": le not increasing");
      if (bs[k].second < bs[k - 1].second) out.errors.push_back(family + ": buckets not cumulative");
    }
    if (bs.empty() || !std::isinf(bs.back().first)) out.errors.push_back(family + ": no +Inf bucket");
    else if (!counts.count(family) || counts[family] != bs.back().second) out.errors.push_back(family + ": +Inf bucket != _count");
  }
  return out;
}

}  // namespace taskpool::test
