/* Forget policy: fixed snapshot sets with known keep sets per rule. */
#include <bulwark/repo.h>

#include <time.h>

#include "test.h"

/* Listed in no particular order; comments give the ISO week. */
static const char *const times[] = {
	"2024-01-01T10:00:00Z", /* 0  Mon 2024-W01 */
	"2024-01-01T10:30:00Z", /* 1  Mon 2024-W01 */
	"2024-01-01T12:00:00Z", /* 2  Mon 2024-W01 */
	"2024-01-02T09:00:00Z", /* 3  Tue 2024-W01 */
	"2024-01-07T23:00:00Z", /* 4  Sun 2024-W01 */
	"2024-01-08T00:30:00Z", /* 5  Mon 2024-W02 */
	"2024-02-15T08:00:00Z", /* 6  Thu 2024-W07 */
	"2024-12-30T12:00:00Z", /* 7  Mon 2025-W01 */
	"2025-01-05T12:00:00Z", /* 8  Sun 2025-W01 (newest) */
	"2023-12-31T12:00:00Z", /* 9  Sun 2023-W52 */
	"2022-06-01T00:00:00Z", /* 10 Wed 2022-W22 (oldest) */
};
#define N (sizeof times / sizeof times[0])
#define B(i) (1u << (i))
#define ALL ((1u << N) - 1)

static struct bw_snapshot snaps[N];
static char *tag_keep[] = {"keep"};
static char *tag_other[] = {"other", "x"};

static void setup(void)
{
	for (size_t i = 0; i < N; i++) {
		memset(&snaps[i], 0, sizeof snaps[i]);
		if (bw_time_parse(times[i], &snaps[i].time_ns))
			abort();
		snaps[i].id.b[0] = (uint8_t)i;
	}
	snaps[0].tags = tag_keep;
	snaps[0].ntags = 1;
	snaps[10].tags = tag_keep;
	snaps[10].ntags = 1;
	snaps[5].tags = tag_other;
	snaps[5].ntags = 2;
}

static unsigned run(const struct bw_forget_policy *p, char (*reasons)[64],
                    int reverse)
{
	const struct bw_snapshot *list[N];
	int keep[N];
	unsigned mask = 0;
	for (size_t i = 0; i < N; i++)
		list[i] = &snaps[reverse ? N - 1 - i : i];
	CHECK_EQ_INT(bw_forget_apply(p, list, N, keep, reasons), 0);
	for (size_t i = 0; i < N; i++)
		if (keep[i])
			mask |= B(reverse ? N - 1 - i : i);
	return mask;
}

static void expect(const struct bw_forget_policy *p, unsigned want,
                   const char *what)
{
	unsigned got = run(p, NULL, 0);
	CHECK_EQ_INT(got, want);
	if (got != want)
		fprintf(stderr, "  policy %s: got %#x want %#x\n", what, got, want);
	/* input order does not matter */
	CHECK_EQ_INT(run(p, NULL, 1), want);
}

#define POLICY(field, v)                                                   \
	do {                                                               \
		struct bw_forget_policy p_;                                \
		memset(&p_, 0, sizeof p_);                                 \
		p_.field = (v);                                            \
		CHECK(!bw_forget_policy_empty(&p_));                       \
		expect(&p_, want, #field "=" #v);                          \
	} while (0)

static void test_rules(void)
{
	unsigned want;

	want = B(8) | B(7) | B(6);
	POLICY(last, 3);
	want = ALL;
	POLICY(last, -1);
	POLICY(last, 100);

	want = B(8) | B(7);
	POLICY(hourly, 2);
	want = ALL & ~B(0); /* 0 and 1 share 10:00 on 2024-01-01 */
	POLICY(hourly, -1);

	want = B(8) | B(7) | B(6) | B(5);
	POLICY(daily, 4);
	want = ALL & ~(B(0) | B(1)); /* 2 is the newest of 2024-01-01 */
	POLICY(daily, -1);

	/* 7 and 8 share ISO week 2025-W01 although their years differ;
	 * 0..4 share 2024-W01 and 4 is the newest of them */
	want = B(8) | B(6) | B(5);
	POLICY(weekly, 3);
	want = B(8) | B(6) | B(5) | B(4) | B(9) | B(10);
	POLICY(weekly, -1);

	want = B(8) | B(7);
	POLICY(monthly, 2);
	want = B(8) | B(7) | B(6) | B(5) | B(9) | B(10);
	POLICY(monthly, -1);

	want = B(8) | B(7);
	POLICY(yearly, 2);
	want = B(8) | B(7) | B(9) | B(10);
	POLICY(yearly, -1);

	/* within counts back from the newest snapshot, strictly newer */
	want = B(8) | B(7);
	POLICY(within_ns, 7 * 86400 * 1000000000LL);
	want = B(8); /* 7 is exactly at the cut-off */
	POLICY(within_ns, 6 * 86400 * 1000000000LL);
	want = ALL;
	POLICY(within_ns, INT64_MAX);
}

static void test_tags_and_reasons(void)
{
	struct bw_forget_policy p;
	char reasons[N][64];
	memset(&p, 0, sizeof p);
	p.keep_tags = tag_keep;
	p.nkeep_tags = 1;
	CHECK(!bw_forget_policy_empty(&p));
	CHECK_EQ_INT(run(&p, reasons, 0), B(0) | B(10));
	CHECK(strcmp(reasons[0], "tag") == 0);
	CHECK(strcmp(reasons[1], "") == 0);

	p.last = 1;
	p.daily = 2;
	p.yearly = -1;
	CHECK_EQ_INT(run(&p, reasons, 0),
	             B(0) | B(10) | B(8) | B(7) | B(9));
	CHECK(strcmp(reasons[8], "last,daily,yearly") == 0);
	CHECK(strcmp(reasons[7], "daily,yearly") == 0);
	CHECK(strcmp(reasons[9], "yearly") == 0);
	CHECK(strcmp(reasons[10], "yearly,tag") == 0);
	CHECK(strcmp(reasons[0], "tag") == 0);
	CHECK(strcmp(reasons[3], "") == 0);

	/* every rule at once still fits in 64 bytes */
	memset(&p, 0, sizeof p);
	p.last = p.hourly = p.daily = p.weekly = p.monthly = p.yearly = -1;
	p.within_ns = 1;
	p.keep_tags = tag_keep;
	p.nkeep_tags = 1;
	/* the newest snapshot carries no tag; give it one for this check */
	snaps[8].tags = tag_keep;
	snaps[8].ntags = 1;
	CHECK_EQ_INT(run(&p, reasons, 0), ALL);
	CHECK(strcmp(reasons[8],
	             "last,hourly,daily,weekly,monthly,yearly,within,tag") == 0);
	snaps[8].tags = NULL;
	snaps[8].ntags = 0;
}

static void test_empty_and_errors(void)
{
	struct bw_forget_policy p;
	char reasons[N][64];
	memset(&p, 0, sizeof p);
	CHECK(bw_forget_policy_empty(&p));
	CHECK_EQ_INT(run(&p, reasons, 0), ALL);
	CHECK(reasons[3][0] != 0);

	const struct bw_snapshot *list[1] = {&snaps[0]};
	int keep[1] = {7};
	p.daily = -2;
	CHECK_EQ_INT(bw_forget_apply(&p, list, 1, keep, NULL), BW_EINVAL);
	p.daily = 0;
	p.within_ns = -1;
	CHECK_EQ_INT(bw_forget_apply(&p, list, 1, keep, NULL), BW_EINVAL);
	p.within_ns = 0;
	p.last = 1;
	CHECK_EQ_INT(bw_forget_apply(&p, list, 0, keep, NULL), 0);
	CHECK_EQ_INT(bw_forget_apply(&p, list, 1, keep, NULL), 0);
	CHECK_EQ_INT(keep[0], 1);
}

/* ISO week edges, equal times, and local time buckets. */
static void test_edges(void)
{
	struct bw_snapshot s[3];
	const struct bw_snapshot *list[3] = {&s[0], &s[1], &s[2]};
	int keep[3];
	struct bw_forget_policy p;
	memset(s, 0, sizeof s);
	memset(&p, 0, sizeof p);

	/* 2020-12-31 (Thu) and 2021-01-03 (Sun) are both in 2020-W53;
	 * 2021-01-04 starts 2021-W01 */
	CHECK_EQ_INT(bw_time_parse("2020-12-31T12:00:00Z", &s[0].time_ns), 0);
	CHECK_EQ_INT(bw_time_parse("2021-01-03T12:00:00Z", &s[1].time_ns), 0);
	CHECK_EQ_INT(bw_time_parse("2021-01-04T00:00:00Z", &s[2].time_ns), 0);
	p.weekly = -1;
	CHECK_EQ_INT(bw_forget_apply(&p, list, 3, keep, NULL), 0);
	CHECK(!keep[0] && keep[1] && keep[2]);

	/* equal times: keep-last 1 keeps exactly one, whatever the order */
	s[0].time_ns = s[1].time_ns = s[2].time_ns = 1000;
	s[0].id.b[0] = 3;
	s[1].id.b[0] = 1;
	s[2].id.b[0] = 2;
	memset(&p, 0, sizeof p);
	p.last = 1;
	CHECK_EQ_INT(bw_forget_apply(&p, list, 3, keep, NULL), 0);
	CHECK(!keep[0] && keep[1] && !keep[2]);

	/* buckets use local time: 23:30 and 00:30 UTC are the same day at
	 * UTC+2 and different days in UTC */
	CHECK_EQ_INT(bw_time_parse("2024-03-10T23:30:00Z", &s[0].time_ns), 0);
	CHECK_EQ_INT(bw_time_parse("2024-03-11T00:30:00Z", &s[1].time_ns), 0);
	memset(&p, 0, sizeof p);
	p.daily = -1;
	CHECK_EQ_INT(bw_forget_apply(&p, list, 2, keep, NULL), 0);
	CHECK(keep[0] && keep[1]);
	setenv("TZ", "BWT-2", 1); /* POSIX rule, no tzdata: UTC+2 */
	tzset();
	CHECK_EQ_INT(bw_forget_apply(&p, list, 2, keep, NULL), 0);
	CHECK(!keep[0] && keep[1]);
	setenv("TZ", "UTC", 1);
	tzset();
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
	setup();
	test_rules();
	test_tags_and_reasons();
	test_empty_and_errors();
	test_edges();
	TEST_DONE();
}
