/* Wall and monotonic clocks, RFC 3339 formatting and parsing, sizes. */
#include <bulwark/core.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t bw_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double bw_mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void split(int64_t ns, time_t *s, long *n)
{
	int64_t sec = ns / 1000000000, rem = ns % 1000000000;
	if (rem < 0) {
		rem += 1000000000;
		sec--;
	}
	*s = (time_t)sec;
	*n = (long)rem;
}

void bw_time_format(int64_t ns, char out[40])
{
	time_t s;
	long n;
	struct tm tm;
	split(ns, &s, &n);
	gmtime_r(&s, &tm);
	char tmp[96];
	snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ",
	         (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, n);
	memcpy(out, tmp, 39);
	out[39] = 0;
}

void bw_time_format_local(int64_t ns, char out[40])
{
	time_t s;
	long n;
	struct tm tm;
	split(ns, &s, &n);
	localtime_r(&s, &tm);
	strftime(out, 40, "%Y-%m-%d %H:%M:%S", &tm);
}

/* Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)" and, as local
 * time, "YYYY-MM-DD[ HH:MM[:SS]]". */
int bw_time_parse(const char *s, int64_t *ns)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int Y, M, D, h = 0, m = 0, sec = 0, used = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &Y, &M, &D, &used) != 3)
		return BW_EINVAL;
	const char *p = s + used;
	int utc = 0;
	long frac = 0;
	if (*p == 'T' || *p == ' ') {
		int k = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &h, &m, &k) != 2)
			return BW_EINVAL;
		p += 1 + k;
		if (*p == ':') {
			if (sscanf(p + 1, "%2d%n", &sec, &k) != 1)
				return BW_EINVAL;
			p += 1 + k;
		}
		if (*p == '.') {
			int digits = 0;
			p++;
			while (*p >= '0' && *p <= '9') {
				if (digits < 9) {
					frac = frac * 10 + (*p - '0');
					digits++;
				}
				p++;
			}
			while (digits++ < 9)
				frac *= 10;
		}
	}
	int off = 0;
	if (*p == 'Z') {
		utc = 1;
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
			return BW_EINVAL;
		off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
		utc = 1;
		p += 6;
	}
	if (*p)
		return BW_EINVAL;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return BW_EINVAL;
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	time_t t;
	if (utc) {
		t = timegm(&tm) - off;
	} else {
		tm.tm_isdst = -1;
		t = mktime(&tm);
	}
	*ns = (int64_t)t * 1000000000 + frac;
	return 0;
}

void bw_fmt_bytes(uint64_t n, char out[32])
{
	static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	int i = 0;
	while (v >= 1024 && i < 5) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(out, 32, "%llu B", (unsigned long long)n);
	else
		snprintf(out, 32, "%.3g %s", v, u[i]);
}
