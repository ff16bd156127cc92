// tests/cron_test.cpp — CronSchedule: parsing, next instants across daylight-saving changes, and a
// property test of next() against a brute-force walk of the definition.
#include <date/date.h>
#include <date/tz.h>
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "taskpool/cron.hpp"
#include "taskpool/time_text.hpp"

using namespace std::chrono_literals;

namespace taskpool {
namespace {

using time_point = CronSchedule::time_point;

// Core keeps its own bound (it may not include the store's time_text.hpp); they must agree.
static_assert(kCronEnd == kMaxTime);

// The next `count` instants strictly after `from`, as the schedule's zone prints them.
std::vector<std::string> nexts(const CronSchedule& s, std::string_view from, int count) {
  std::vector<std::string> out;
  time_point t = parse_time(from);
  for (int i = 0; i < count; ++i) {
    auto n = s.next(t);
    if (!n) {
      out.push_back("none");
      break;
    }
    EXPECT_GT(*n, t);
    out.push_back(s.format(*n));
    t = *n;
  }
  return out;
}

struct Case {
  const char* expr;
  const char* zone;
  const char* from;
  std::vector<std::string> want;
};

// Invariant: next() is the first instant strictly after `from` at which a matching wall time
// occurs; gap matches collapse into the first instant after the gap; fold matches occur once,
// at the earlier instant.
TEST(Cron, NextInstantsTable) {
  const std::vector<Case> cases = {
      // America/New_York 2026: gap Mar 8 02:00 EST -> 03:00 EDT, fold Nov 1 02:00 EDT -> 01:00 EST.
      {"30 2 * * *", "America/New_York", "2026-03-07T03:00:00-05:00",
       {"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
      {"*/15 2 * * *", "America/New_York", "2026-03-08T01:50:00-05:00",
       {"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"}},
      {"0 2,3 * * *", "America/New_York", "2026-03-08T00:00:00-05:00",
       {"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00", "2026-03-09T03:00:00-04:00"}},
      {"0 * * * *", "America/New_York", "2026-03-08T00:30:00-05:00",
       {"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"}},
      {"30 1 * * *", "America/New_York", "2026-10-31T12:00:00-04:00",
       {"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
      {"*/20 1 * * *", "America/New_York", "2026-11-01T00:59:00-04:00",
       {"2026-11-01T01:00:00-04:00", "2026-11-01T01:20:00-04:00", "2026-11-01T01:40:00-04:00",
        "2026-11-02T01:00:00-05:00"}},
      {"0 * * * *", "America/New_York", "2026-11-01T00:30:00-04:00",
       {"2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"}},
      // Europe/London 2026: gap Mar 29 01:00 GMT -> 02:00 BST, fold Oct 25 02:00 BST -> 01:00 GMT.
      {"30 1 * * *", "Europe/London", "2026-03-28T12:00:00+00:00",
       {"2026-03-29T02:00:00+01:00", "2026-03-30T01:30:00+01:00"}},
      {"30 1 * * *", "Europe/London", "2026-10-24T12:00:00+01:00",
       {"2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"}},
      // Australia/Lord_Howe: a 30-minute shift. Gap Oct 4 2026 02:00 -> 02:30 (+10:30 -> +11:00),
      // fold Apr 5 2026 02:00 -> 01:30 (+11:00 -> +10:30).
      {"15 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30",
       {"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
      {"0,30 * * * *", "Australia/Lord_Howe", "2026-10-04T01:00:00+10:30",
       {"2026-10-04T01:30:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T03:00:00+11:00"}},
      {"45 1 * * *", "Australia/Lord_Howe", "2026-04-04T12:00:00+11:00",
       {"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}},
      {"*/30 * * * *", "Australia/Lord_Howe", "2026-04-05T01:00:00+11:00",
       {"2026-04-05T01:30:00+11:00", "2026-04-05T02:00:00+10:30", "2026-04-05T02:30:00+10:30"}},
      // Asia/Shanghai: no daylight saving since 1991 (gap 1991-04-14 02:00 -> 03:00).
      {"0 9 * * MON-FRI", "Asia/Shanghai", "2026-01-01T00:00:00+08:00",
       {"2026-01-01T09:00:00+08:00", "2026-01-02T09:00:00+08:00", "2026-01-05T09:00:00+08:00"}},
      {"30 2 * * *", "Asia/Shanghai", "1991-04-13T12:00:00+08:00",
       {"1991-04-14T03:00:00+09:00", "1991-04-15T02:30:00+09:00"}},
      // 29 February: leap years only (2100 is not one).
      {"0 0 29 2 *", "", "2026-01-01T00:00:00Z",
       {"2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00", "2036-02-29T00:00:00+00:00"}},
      {"0 12 29 FEB *", "Europe/London", "2096-03-01T00:00:00Z", {"2104-02-29T12:00:00+00:00"}},
      // Vixie: both day fields restricted -> either; one starts with '*' -> both.
      {"0 0 29 2 MON", "", "2026-01-01T00:00:00Z",
       {"2026-02-02T00:00:00+00:00", "2026-02-09T00:00:00+00:00", "2026-02-16T00:00:00+00:00",
        "2026-02-23T00:00:00+00:00", "2027-02-01T00:00:00+00:00"}},
      {"0 0 29 2 MON", "", "2028-02-27T00:00:00Z", {"2028-02-28T00:00:00+00:00", "2028-02-29T00:00:00+00:00"}},
      {"0 0 */2 * mon", "", "2026-01-01T00:00:00Z",
       {"2026-01-05T00:00:00+00:00", "2026-01-19T00:00:00+00:00", "2026-02-09T00:00:00+00:00"}},
      // @weekly (Sunday midnight) across a year end; 7 and SUN are Sunday too.
      {"@weekly", "", "2026-12-25T00:00:00Z",
       {"2026-12-27T00:00:00+00:00", "2027-01-03T00:00:00+00:00", "2027-01-10T00:00:00+00:00"}},
      {"@WEEKLY", "America/New_York", "2026-12-31T12:00:00Z",
       {"2027-01-03T00:00:00-05:00", "2027-01-10T00:00:00-05:00"}},
      {"0 0 * * 7", "", "2026-12-25T00:00:00Z", {"2026-12-27T00:00:00+00:00"}},
      {"0 0 * * Sun", "", "2026-12-25T00:00:00Z", {"2026-12-27T00:00:00+00:00"}},
      {"0 0 * * 5-7", "", "2026-12-25T00:00:00Z",
       {"2026-12-26T00:00:00+00:00", "2026-12-27T00:00:00+00:00", "2027-01-01T00:00:00+00:00"}},
      // Six fields: seconds first.
      {"*/20 * * * * *", "", "2026-01-01T00:00:05Z",
       {"2026-01-01T00:00:20+00:00", "2026-01-01T00:00:40+00:00", "2026-01-01T00:01:00+00:00"}},
      {"10-12 0 0 1 1 *", "", "2026-06-01T00:00:00Z",
       {"2027-01-01T00:00:10+00:00", "2027-01-01T00:00:11+00:00", "2027-01-01T00:00:12+00:00",
        "2028-01-01T00:00:10+00:00"}},
      {"30 30 2 * * *", "America/New_York", "2026-03-08T00:00:00-05:00",
       {"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:30-04:00"}},
      // Macros; strictly after: an instant itself is not its own next.
      {"@yearly", "", "2026-01-01T00:00:00Z", {"2027-01-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00"}},
      {"@annually", "Asia/Shanghai", "2026-06-01T00:00:00Z", {"2027-01-01T00:00:00+08:00"}},
      {"@monthly", "", "2026-01-31T23:59:59Z", {"2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"}},
      {"@daily", "", "2026-02-28T00:00:00Z", {"2026-03-01T00:00:00+00:00"}},
      {"@midnight", "", "2028-02-28T00:00:00Z", {"2028-02-29T00:00:00+00:00"}},
      {"@hourly", "", "2026-01-01T00:00:00Z", {"2026-01-01T01:00:00+00:00"}},
      {"5,10-12,50-59/4 0 * JAN,jul *", "", "2026-01-01T00:07:00Z",
       {"2026-01-01T00:10:00+00:00", "2026-01-01T00:11:00+00:00", "2026-01-01T00:12:00+00:00",
        "2026-01-01T00:50:00+00:00", "2026-01-01T00:54:00+00:00", "2026-01-01T00:58:00+00:00"}},
      // No instant before 2200.
      {"0 0 30 2 *", "America/New_York", "2026-01-01T00:00:00Z", {"none"}},
      {"0 0 31 4,6,9,11 *", "", "2026-01-01T00:00:00Z", {"none"}},
      {"@yearly", "", "2199-01-01T00:00:00Z", {"none"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.expr) + " in '" + c.zone + "' after " + c.from);
    auto s = CronSchedule::parse(c.expr, c.zone);
    EXPECT_EQ(s.expr(), c.expr);
    EXPECT_EQ(s.zone(), c.zone);
    EXPECT_EQ(nexts(s, c.from, static_cast<int>(c.want.size())), c.want);
  }
}

// Invariant: sub-second `after` rounds correctly; an impossible expression answers quickly
// (bounded work, checked by the test's timeout rather than a timing assertion).
TEST(Cron, StrictlyAfterAndImpossible) {
  auto s = CronSchedule::parse("* * * * * *");
  time_point t = parse_time("2026-01-01T00:00:00Z");
  EXPECT_EQ(s.next(t), t + 1s);
  EXPECT_EQ(s.next(t + 500ms), t + 1s);
  EXPECT_EQ(s.next(t - 1ns), t);
  auto never = CronSchedule::parse("0 0 30 2 *", "Australia/Lord_Howe");
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(never.next(t + std::chrono::hours(24 * 30 * i)).has_value());
  EXPECT_FALSE(s.next(kCronEnd - 1s).has_value());
  EXPECT_FALSE(s.next(time_point::max()).has_value());
  EXPECT_EQ(s.next(time_point::min()), time_point{});
  auto utc = CronSchedule::parse("@daily", "UTC");
  EXPECT_EQ(utc.format(*utc.next(t)), "2026-01-02T00:00:00+00:00");
  auto kolkata = CronSchedule::parse("30 5 * * *", "Asia/Kolkata");
  EXPECT_EQ(kolkata.utc_offset(t), 5h + 30min);
  EXPECT_EQ(kolkata.format(*kolkata.next(t)), "2026-01-02T05:30:00+05:30");  // t is 05:30 there: strictly after
}

// Invariant: every bad expression or zone throws invalid_argument whose one-line message names
// the field and the offending text.
TEST(Cron, BadInputsNameFieldAndText) {
  struct Bad {
    const char* expr;
    const char* zone;
    std::vector<const char*> parts;
  };
  const std::vector<Bad> bad = {
      {"", "", {"expression", "got 0"}},
      {"* * * *", "", {"expression", "got 4", "'* * * *'"}},
      {"* * * * * * *", "", {"expression", "got 7"}},
      {"60 * * * *", "", {"minute field", "'60'"}},
      {"* 24 * * *", "", {"hour field", "'24'"}},
      {"* * 0 * *", "", {"day-of-month field", "'0'"}},
      {"* * 32 * *", "", {"day-of-month field", "'32'"}},
      {"* * * 13 *", "", {"month field", "'13'"}},
      {"* * * FOO *", "", {"month field", "'FOO'"}},
      {"* * * * 8", "", {"day-of-week field", "'8'"}},
      {"* * * * MONDAY", "", {"day-of-week field", "'MONDAY'"}},
      {"* * * JAN-MON *", "", {"month field", "'JAN-MON'"}},
      {"5-1 * * * *", "", {"minute field", "'5-1'"}},
      {"*/0 * * * *", "", {"minute field", "'*/0'"}},
      {"*/61 * * * *", "", {"minute field", "'*/61'"}},
      {"5/10 * * * *", "", {"minute field", "'5/10'"}},
      {"1,,2 * * * *", "", {"minute field", "'1,,2'"}},
      {"-1 * * * *", "", {"minute field", "'-1'"}},
      {"1-2-3 * * * *", "", {"minute field", "'1-2-3'"}},
      {"*/ * * * *", "", {"minute field", "'*/'"}},
      {"1/2/3 * * * *", "", {"minute field", "'1/2/3'"}},
      {"99999999 * * * *", "", {"minute field", "'99999999'"}},
      {"61 * * * * *", "", {"second field", "'61'"}},
      {"0 0 0 0 * * ", "", {"day-of-month field", "'0'"}},
      {"@fortnightly", "", {"macro", "'@fortnightly'"}},
      {"@daily *", "", {"expression", "got 2"}},
      {"* * * * *", "Mars/Olympus", {"tz", "'Mars/Olympus'"}},
      {"* * * * *", "../../etc/passwd", {"tz", "'../../etc/passwd'"}},
      {"* \x01 * * *", "", {"hour field", "'\\x01'"}},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(std::string("'") + b.expr + "' in '" + b.zone + "'");
    try {
      (void)CronSchedule::parse(b.expr, b.zone);
      ADD_FAILURE() << "accepted";
    } catch (const std::invalid_argument& e) {
      std::string msg = e.what();
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      EXPECT_TRUE(msg.starts_with("cron: ")) << msg;
      for (const char* p : b.parts) EXPECT_NE(msg.find(p), std::string::npos) << msg << " lacks " << p;
    }
  }
}

// --- Property test: next() against a walk of the definition -----------------------------------

// A random expression with its sets, built independently of the parser.
struct RandomExpr {
  std::string text;
  std::vector<bool> sec, min, hour, dom, mon, dow;  // dow 0..6
  bool dom_star = false, dow_star = false;
};

std::string random_field(std::mt19937& rng, int lo, int hi, std::vector<bool>& set, bool& star,
                         const char* const* names = nullptr, int names_base = 0) {
  set.assign(static_cast<std::size_t>(hi + 1), false);
  auto pick = [&](int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng); };
  auto name = [&](int v) -> std::string {
    if (names && v - names_base >= 0 && v - names_base < (hi == 7 ? 7 : 12) && pick(0, 2) == 0)
      return names[v - names_base];
    return std::to_string(v);
  };
  std::string text;
  star = false;
  const int form = pick(0, 9);
  if (form == 0) {
    text = "*";
    star = true;
    for (int v = lo; v <= hi; ++v) set[static_cast<std::size_t>(v)] = true;
  } else if (form == 1) {
    int k = pick(2, hi - lo + 1);
    text = "*/" + std::to_string(k);
    star = true;
    for (int v = lo; v <= (hi == 7 ? 6 : hi); v += k) set[static_cast<std::size_t>(v)] = true;
  } else if (form <= 4) {
    int a = pick(lo, hi), b = pick(a, std::min(hi, a + 12)), k = pick(1, 5);
    text = name(a) + "-" + name(b) + (k > 1 ? "/" + std::to_string(k) : "");
    for (int v = a; v <= b; v += k) set[static_cast<std::size_t>(v)] = true;
  } else {
    int n = pick(1, 4);
    for (int i = 0; i < n; ++i) {
      int v = pick(lo, hi);
      text += (i ? "," : "") + name(v);
      set[static_cast<std::size_t>(v)] = true;
    }
  }
  if (hi == 7 && set[7]) {
    set[0] = true;
    set.resize(7);
  } else if (hi == 7) {
    set.resize(7);
  }
  return text;
}

const char* const kMon[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
const char* const kDow[] = {"sun", "Mon", "TUE", "wed", "Thu", "fri", "SAT"};

RandomExpr random_expr(std::mt19937& rng, bool seconds) {
  RandomExpr r;
  bool ignored;
  if (seconds) {
    r.text = random_field(rng, 0, 59, r.sec, ignored) + " ";
  } else {
    r.sec.assign(60, false);
    r.sec[0] = true;
  }
  r.text += random_field(rng, 0, 59, r.min, ignored) + " ";
  r.text += random_field(rng, 0, 23, r.hour, ignored) + " ";
  r.text += random_field(rng, 1, 31, r.dom, r.dom_star) + " ";
  r.text += random_field(rng, 1, 12, r.mon, ignored, kMon, 1) + " ";
  r.text += random_field(rng, 0, 7, r.dow, r.dow_star, kDow, 0);
  return r;
}

bool ref_matches(const RandomExpr& r, long long local) {
  const long long days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  const long long sod = local - days * 86400;
  const date::sys_days sd{date::days(days)};
  const date::year_month_day ymd(sd);
  const bool d = r.dom[static_cast<unsigned>(ymd.day())], w = r.dow[date::weekday(sd).c_encoding()];
  const bool day = (!r.dom_star && !r.dow_star) ? (d || w) : (d && w);
  return r.mon[static_cast<unsigned>(ymd.month())] && day && r.hour[static_cast<std::size_t>(sod / 3600)] &&
         r.min[static_cast<std::size_t>(sod / 60 % 60)] && r.sec[static_cast<std::size_t>(sod % 60)];
}

// The schedule by definition, walking instants in [from, to) by `step` seconds: an instant is in
// it when its wall time matches and is the first occurrence of that wall time (date's
// local_info::ambiguous), or when it is the first instant after a gap that skipped a match.
std::vector<long long> brute_force(const RandomExpr& r, const date::time_zone* tz, long long from, long long to,
                                   long long step) {
  std::vector<long long> out;
  date::sys_info info{};
  long long info_end = from - 1;
  long long prev_off = 0;
  for (long long s = from; s < to; s += step) {
    if (!tz) {
      if (ref_matches(r, s)) out.push_back(s);
      continue;
    }
    if (s >= info_end) {
      prev_off = tz->get_info(date::sys_seconds(std::chrono::seconds(s - 1))).offset.count();
      info = tz->get_info(date::sys_seconds(std::chrono::seconds(s)));
      info_end = info.end.time_since_epoch().count();
    }
    const long long off = info.offset.count();
    const long long local = s + off;
    bool hit = false;
    if (ref_matches(r, local)) {
      auto li = tz->get_info(date::local_seconds(std::chrono::seconds(local)));
      hit = li.result != date::local_info::ambiguous || local - li.first.offset.count() == s;
    }
    if (!hit && info.begin.time_since_epoch().count() == s && prev_off < off) {
      for (long long l = s + prev_off; l < s + off && !hit; l += step) hit = ref_matches(r, l);
    }
    if (hit) out.push_back(s);
    prev_off = off;
  }
  return out;
}

std::vector<long long> by_next(const CronSchedule& cs, long long from, long long to) {
  std::vector<long long> out;
  auto t = time_point(std::chrono::seconds(from - 1));
  while (auto n = cs.next(t)) {
    long long v = std::chrono::floor<std::chrono::seconds>(*n).time_since_epoch().count();
    if (v >= to) break;
    out.push_back(v);
    t = *n;
  }
  return out;
}

// Invariant: for random expressions and zones, the instants next() chains through over a year
// equal the definition walked minute by minute (five fields) or second by second (six fields,
// over a few days around a change), including every gap and fold in that span.
TEST(Cron, PropertyAgainstBruteForce) {
  std::mt19937 rng(20261122);
  const char* zones[] = {"", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Shanghai",
                         "Asia/Kolkata"};
  int checked = 0;
  for (int i = 0; i < 36; ++i) {
    RandomExpr r = random_expr(rng, false);
    const char* zone = zones[static_cast<std::size_t>(i) % std::size(zones)];
    // Five-field matches fall on whole minutes in every zone here; a start within 1986..2030.
    const long long from = (515'000'000 + static_cast<long long>(rng() % 1'380'000'000)) / 60 * 60;
    const long long to = from + 366 * 86400;
    SCOPED_TRACE(r.text + " in '" + zone + "' from " + std::to_string(from));
    auto cs = CronSchedule::parse(r.text, zone);
    const date::time_zone* tz = *zone ? date::locate_zone(zone) : nullptr;
    auto want = brute_force(r, tz, from, to, 60);
    auto got = by_next(cs, from, to);
    ASSERT_EQ(got, want);
    checked += static_cast<int>(got.size());
  }
  for (int i = 0; i < 8; ++i) {
    RandomExpr r = random_expr(rng, true);
    const char* zone = zones[static_cast<std::size_t>(i) % std::size(zones)];
    // Around the 2026 spring change of the zone's hemisphere, or a random span.
    long long from = (zone == std::string("Australia/Lord_Howe")) ? 1'775'300'000 : 1'772'800'000;
    from += static_cast<long long>(rng() % 4) * 86400 * 60;
    SCOPED_TRACE(r.text + " in '" + zone + "' from " + std::to_string(from));
    auto cs = CronSchedule::parse(r.text, zone);
    const date::time_zone* tz = *zone ? date::locate_zone(zone) : nullptr;
    auto want = brute_force(r, tz, from, from + 3 * 86400, 1);
    auto got = by_next(cs, from, from + 3 * 86400);
    ASSERT_EQ(got, want);
    checked += static_cast<int>(got.size());
  }
  EXPECT_GT(checked, 1000);
}

// `minutes hours * * *` with the sets given by hand (no parser involved).
RandomExpr daily(std::string text, std::vector<int> minutes, std::vector<int> hours) {
  RandomExpr r;
  r.text = std::move(text);
  r.sec.assign(60, false);
  r.sec[0] = true;
  r.min.assign(60, false);
  for (int m : minutes) r.min[static_cast<std::size_t>(m)] = true;
  r.hour.assign(24, false);
  for (int h : hours) r.hour[static_cast<std::size_t>(h)] = true;
  r.dom.assign(32, true);
  r.mon.assign(13, true);
  r.dow.assign(7, true);
  r.dom_star = r.dow_star = true;
  return r;
}

// Invariant: at each known gap and fold of the four zones, next() equals the definition walked
// minute by minute.
TEST(Cron, PropertyAtKnownChanges) {
  const std::vector<int> every7 = {0, 7, 14, 21, 28, 35, 42, 49, 56}, every10 = {0, 10, 20, 30, 40, 50};
  std::vector<int> all_minutes, all_hours;
  for (int i = 0; i < 60; ++i) all_minutes.push_back(i);
  for (int i = 0; i < 24; ++i) all_hours.push_back(i);
  struct Span {
    RandomExpr r;
    const char* zone;
    const char* from;
  };
  const Span spans[] = {
      {daily("*/7 0-4 * * *", every7, {0, 1, 2, 3, 4}), "America/New_York", "2026-03-07T00:00:00Z"},
      {daily("*/7 0-4 * * *", every7, {0, 1, 2, 3, 4}), "America/New_York", "2026-10-31T00:00:00Z"},
      {daily("*/10 * * * *", every10, all_hours), "Australia/Lord_Howe", "2026-04-04T00:00:00Z"},
      {daily("*/10 * * * *", every10, all_hours), "Australia/Lord_Howe", "2026-10-03T00:00:00Z"},
      {daily("13,47 1,2 * * *", {13, 47}, {1, 2}), "Europe/London", "2026-03-28T00:00:00Z"},
      {daily("13,47 1,2 * * *", {13, 47}, {1, 2}), "Europe/London", "2026-10-24T00:00:00Z"},
      {daily("* 2 * * *", all_minutes, {2}), "Asia/Shanghai", "1991-04-13T00:00:00Z"},
      {daily("* 1 * * *", all_minutes, {1}), "Asia/Shanghai", "1991-09-14T00:00:00Z"},
  };
  for (const Span& sp : spans) {
    SCOPED_TRACE(sp.r.text + " in " + sp.zone + " from " + sp.from);
    auto cs = CronSchedule::parse(sp.r.text, sp.zone);
    const long long from = std::chrono::floor<std::chrono::seconds>(parse_time(sp.from)).time_since_epoch().count();
    auto want = brute_force(sp.r, date::locate_zone(sp.zone), from, from + 3 * 86400, 60);
    ASSERT_FALSE(want.empty());
    ASSERT_EQ(by_next(cs, from, from + 3 * 86400), want);
  }
}

}  // namespace
}  // namespace taskpool
