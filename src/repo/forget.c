/* Which snapshots a forget policy keeps; restic's rules.
 *
 * Snapshots are walked newest first.  keep-last N keeps the N newest.
 * For hourly/daily/weekly/monthly/yearly a snapshot is kept when its time
 * bucket (local time; weeks are ISO 8601 weeks) differs from the bucket of
 * the last snapshot that rule kept, while the rule has count left (-1 =
 * no limit) -- so each rule keeps the newest snapshot of each of its N most
 * recent buckets that have snapshots.  within keeps everything strictly
 * newer than (newest snapshot's time - within_ns); keep_tags keeps every
 * snapshot carrying one of the tags.  A snapshot is kept if any rule keeps
 * it.  Unlike restic >= 0.16, the oldest snapshot is not kept just because
 * a rule has count left over. */
#include <bulwark/repo.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { R_LAST, R_HOURLY, R_DAILY, R_WEEKLY, R_MONTHLY, R_YEARLY, R_NRULES };

static const char *const rule_names[R_NRULES] = {
	"last", "hourly", "daily", "weekly", "monthly", "yearly",
};

struct entry {
	int64_t time_ns;
	const struct bw_id *id;
	size_t index; /* into the caller's arrays */
};

/* Newest first; ties broken by ID, then input order, so that the result
 * does not depend on the order the caller listed the snapshots in. */
static int cmp_entry(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;
	if (a->time_ns != b->time_ns)
		return a->time_ns > b->time_ns ? -1 : 1;
	int c = memcmp(a->id->b, b->id->b, BW_ID_LEN);
	if (c)
		return c;
	return a->index < b->index ? -1 : a->index > b->index;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int64_t year_from_days(int64_t z)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;
	return yoe + era * 400 + (m <= 2);
}

/* ISO 8601 week as year * 100 + week. */
static int64_t iso_week(const struct tm *tm)
{
	int64_t days = days_from_civil((int64_t)tm->tm_year + 1900,
	                               tm->tm_mon + 1, tm->tm_mday);
	int64_t wd = ((days % 7) + 7 + 3) % 7; /* Monday = 0; 1970-01-01 was a Thursday */
	int64_t thu = days - wd + 3;           /* the week belongs to its Thursday's year */
	int64_t y = year_from_days(thu);
	int64_t week = (thu - days_from_civil(y, 1, 1)) / 7 + 1;
	return y * 100 + week;
}

static void buckets(int64_t ns, int64_t out[R_NRULES], size_t nr)
{
	int64_t s = ns / 1000000000;
	if (ns % 1000000000 < 0)
		s--;
	time_t t = (time_t)s;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	localtime_r(&t, &tm);
	int64_t y = (int64_t)tm.tm_year + 1900;
	out[R_LAST] = (int64_t)nr; /* every snapshot is its own bucket */
	out[R_YEARLY] = y;
	out[R_MONTHLY] = y * 100 + tm.tm_mon + 1;
	out[R_DAILY] = out[R_MONTHLY] * 100 + tm.tm_mday;
	out[R_HOURLY] = out[R_DAILY] * 100 + tm.tm_hour;
	out[R_WEEKLY] = iso_week(&tm);
}

static void add_reason(char *dst, const char *why)
{
	size_t len = strlen(dst), n = strlen(why);
	if (len + (len ? 1 : 0) + n >= 64)
		return;
	if (len)
		dst[len++] = ',';
	memcpy(dst + len, why, n + 1);
}

int bw_forget_policy_empty(const struct bw_forget_policy *p)
{
	return !p->last && !p->hourly && !p->daily && !p->weekly &&
	       !p->monthly && !p->yearly && !p->within_ns && !p->nkeep_tags;
}

int bw_forget_apply(const struct bw_forget_policy *p,
                    const struct bw_snapshot *const *snaps, size_t n,
                    int *keep, char (*reasons)[64])
{
	struct entry *e = NULL;
	int count[R_NRULES] = {p->last, p->hourly, p->daily, p->weekly,
	                       p->monthly, p->yearly};
	int64_t last_bucket[R_NRULES];
	int have_last[R_NRULES] = {0};
	int r = 0;

	for (int i = 0; i < R_NRULES; i++)
		if (count[i] < -1)
			return bw_errf(BW_EINVAL, "forget: keep-%s must be -1 or "
			               "more, not %d", rule_names[i], count[i]);
	if (p->within_ns < 0)
		return bw_errf(BW_EINVAL, "forget: negative keep-within");
	if (p->nkeep_tags && !p->keep_tags)
		return bw_errf(BW_EINVAL, "forget: keep tags missing");
	if (n && (!snaps || !keep))
		return bw_errf(BW_EINVAL, "forget: no snapshots or result array");
	for (size_t i = 0; i < n; i++) {
		if (!snaps[i])
			return bw_errf(BW_EINVAL, "forget: snapshot %zu missing", i);
		keep[i] = 0;
		if (reasons)
			reasons[i][0] = 0;
	}
	if (n == 0)
		return 0;
	if (bw_forget_policy_empty(p)) {
		for (size_t i = 0; i < n; i++) {
			keep[i] = 1;
			if (reasons)
				add_reason(reasons[i], "empty policy");
		}
		return 0;
	}

	if (!(e = calloc(n, sizeof *e))) {
		r = BW_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		e[i].time_ns = snaps[i]->time_ns;
		e[i].id = &snaps[i]->id;
		e[i].index = i;
	}
	qsort(e, n, sizeof *e, cmp_entry);

	/* within counts back from the newest snapshot, not from now, so that
	 * a repository that stopped getting backups keeps its last ones */
	int64_t cutoff = INT64_MIN;
	if (p->within_ns) {
		int64_t newest = e[0].time_ns;
		cutoff = newest < INT64_MIN + p->within_ns ? INT64_MIN
		                                           : newest - p->within_ns;
	}

	for (size_t nr = 0; nr < n; nr++) {
		size_t i = e[nr].index;
		const struct bw_snapshot *s = snaps[i];
		int64_t b[R_NRULES];
		char *why = reasons ? reasons[i] : NULL;

		buckets(s->time_ns, b, nr);
		for (int k = 0; k < R_NRULES; k++) {
			if (count[k] == 0)
				continue;
			if (have_last[k] && b[k] == last_bucket[k])
				continue;
			keep[i] = 1;
			have_last[k] = 1;
			last_bucket[k] = b[k];
			if (count[k] > 0)
				count[k]--;
			if (why)
				add_reason(why, rule_names[k]);
		}
		if (p->within_ns && s->time_ns > cutoff) {
			keep[i] = 1;
			if (why)
				add_reason(why, "within");
		}
		for (size_t t = 0; t < p->nkeep_tags; t++) {
			if (p->keep_tags[t] && bw_snapshot_has_tag(s, p->keep_tags[t])) {
				keep[i] = 1;
				if (why)
					add_reason(why, "tag");
				break;
			}
		}
	}
out:
	free(e);
	return r;
}
