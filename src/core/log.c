/* Leveled logging to stderr; JSON lines for daemons. */
#include <bulwark/core.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

int bw_log_level = BW_LOG_WARN;
static int log_json;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void bw_log_set_json(int on) { log_json = on; }

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void bw_log_write(int level, const char *file, int line, const char *func,
                  const char *fmt, ...)
{
	static const char *names[] = {"error", "warning", "info", "debug"};
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	if (log_json) {
		char ts[40];
		bw_time_format(bw_now_ns(), ts);
		fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"src\":\"%s:%d\",\"msg\":",
		        ts, names[level], file, line);
		json_str(stderr, msg);
		fputs("}\n", stderr);
	} else if (level >= BW_LOG_DEBUG) {
		const char *b = strrchr(file, '/');
		fprintf(stderr, "debug: %s:%d %s: %s\n", b ? b + 1 : file, line,
		        func, msg);
	} else {
		fprintf(stderr, "%s: %s\n", names[level], msg);
	}
	pthread_mutex_unlock(&log_lock);
}
