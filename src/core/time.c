/* Wall, monotonic and boot clocks, RFC 3339 formatting and parsing, sizes. */
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

int64_t bw_boot_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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

/* n decimal digits at *p into *v; advances *p */
static int digits(const char **p, int n, int *v)
{
	int x = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		x = x * 10 + (c - '0');
	}
	*p += n;
	*v = x;
	return 0;
}

/* Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)" and, as local
 * time, "YYYY-MM-DD[ HH:MM[:SS]]".  Years 1678-2261 (int64 nanoseconds). */
int bw_time_parse(const char *s, int64_t *ns)
{
	struct tm tm;
	const char *p = s;
	int Y, M, D, h = 0, m = 0, sec = 0, utc = 0, off = 0;
	long frac = 0;
	memset(&tm, 0, sizeof tm);
	if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) ||
	    *p++ != '-' || digits(&p, 2, &D))
		return BW_EINVAL;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m))
			return BW_EINVAL;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &sec))
				return BW_EINVAL;
		}
		if (*p == '.') {
			int nd = 0;
			p++;
			if (*p < '0' || *p > '9')
				return BW_EINVAL;
			while (*p >= '0' && *p <= '9') {
				if (nd < 9) {
					frac = frac * 10 + (*p - '0');
					nd++;
				}
				p++;
			}
			while (nd++ < 9)
				frac *= 10;
		}
	}
	if (*p == 'Z') {
		utc = 1;
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;
		p++;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) ||
		    oh > 23 || om > 59)
			return BW_EINVAL;
		off = sign * (oh * 60 + om) * 60;
		utc = 1;
	}
	if (*p)
		return BW_EINVAL;
	if (Y < 1678 || Y > 2261 || M < 1 || M > 12 || D < 1 || D > 31 ||
	    h > 23 || m > 59 || sec > 60)
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
	/* 2261-12-31 plus a day of offset still fits: |t| < 9.2e9 */
	if (t < -9200000000LL || t > 9200000000LL)
		return BW_EINVAL;
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
