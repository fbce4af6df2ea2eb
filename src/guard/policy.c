/* The guard's policy: defaults, the local configuration file, trusted
 * programs.  The file is read only from the endpoint's own disk; nothing
 * a server sends can add a trusted program. */
#include <bulwark/guard.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POLICY_FILE_MAX (1 << 20)
#define POLICY_LINE_MAX 8192

void bw_guard_policy_defaults(struct bw_guard_policy *p)
{
	memset(p, 0, sizeof *p);
	snprintf(p->state_dir, sizeof p->state_dir, "%s", BW_GUARD_STATE_DIR);
	p->mode = BW_GUARD_ENFORCE;
	p->vault_budget = 4ULL << 30;
	p->copy_max = 1ULL << 30;
	p->expiry_ns = 7LL * 86400 * 1000000000LL;
	p->freeze_score = 1.2; /* one file destroyed: stop the tree and look */
	p->kill_score = 2.0;
	p->window_ns = 120LL * 1000000000LL;
	p->canaries = 1;
	p->use_syslog = 1;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno)
		return BW_EINVAL;
	int sh = 0;
	switch (toupper((unsigned char)*end)) {
	case 0: break;
	case 'K': sh = 10; end++; break;
	case 'M': sh = 20; end++; break;
	case 'G': sh = 30; end++; break;
	case 'T': sh = 40; end++; break;
	default: return BW_EINVAL;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || (sh && v > (UINT64_MAX >> sh)))
		return BW_EINVAL;
	*out = (uint64_t)v << sh;
	return 0;
}

static int parse_dur(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || errno || v < 0)
		return BW_EINVAL;
	int64_t mul = 1000000000LL;
	if (!strcmp(end, "ms")) mul = 1000000LL;
	else if (!*end || !strcmp(end, "s")) mul = 1000000000LL;
	else if (!strcmp(end, "m") || !strcmp(end, "min")) mul = 60000000000LL;
	else if (!strcmp(end, "h")) mul = 3600000000000LL;
	else if (!strcmp(end, "d")) mul = 86400000000000LL;
	else return BW_EINVAL;
	if (v > INT64_MAX / mul)
		return BW_EINVAL;
	*out = v * mul;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	if (!strcmp(s, "yes") || !strcmp(s, "on") || !strcmp(s, "true") || !strcmp(s, "1"))
		*out = 1;
	else if (!strcmp(s, "no") || !strcmp(s, "off") || !strcmp(s, "false") ||
	         !strcmp(s, "0"))
		*out = 0;
	else
		return BW_EINVAL;
	return 0;
}

int bw_guard_policy_add_trust(struct bw_guard_policy *p, const char *spec)
{
	if (p->ntrust >= BW_GUARD_MAX_TRUST)
		return bw_errf(BW_ETOOBIG, "at most %d trusted programs", BW_GUARD_MAX_TRUST);
	struct bw_guard_trust *t = &p->trust[p->ntrust];
	memset(t, 0, sizeof *t);
	const char *eq = strstr(spec, "=sha256:");
	size_t pl = eq ? (size_t)(eq - spec) : strlen(spec);
	if (!pl || spec[0] != '/' || pl >= sizeof t->path)
		return bw_errf(BW_EINVAL, "trust %s: give an absolute path, "
		               "optionally =sha256:HEX", spec);
	memcpy(t->path, spec, pl);
	if (eq) {
		const char *hex = eq + 8;
		if (strlen(hex) != 64 || bw_hex_decode(hex, t->sha256, 32))
			return bw_errf(BW_EINVAL, "trust %s: the sha256 must be 64 hex digits",
			               spec);
	} else {
		t->any_hash = 1;
	}
	p->ntrust++;
	return 0;
}

static int set_kv(struct bw_guard_policy *p, const char *k, const char *v)
{
	uint64_t u;
	int64_t d;
	int b;
	if (!strcmp(k, "protect")) {
		if (p->nprotect >= BW_GUARD_MAX_PROTECT)
			return bw_errf(BW_ETOOBIG, "at most %d protected trees", BW_GUARD_MAX_PROTECT);
		if (v[0] != '/' || strlen(v) >= sizeof p->protect[0])
			return bw_errf(BW_EINVAL, "protect needs an absolute path");
		snprintf(p->protect[p->nprotect++], sizeof p->protect[0], "%s", v);
	} else if (!strcmp(k, "state-dir")) {
		if (v[0] != '/' || strlen(v) >= sizeof p->state_dir)
			return bw_errf(BW_EINVAL, "state-dir needs an absolute path");
		snprintf(p->state_dir, sizeof p->state_dir, "%s", v);
	} else if (!strcmp(k, "alert-log")) {
		if (v[0] != '/' || strlen(v) >= sizeof p->alert_log)
			return bw_errf(BW_EINVAL, "alert-log needs an absolute path");
		snprintf(p->alert_log, sizeof p->alert_log, "%s", v);
	} else if (!strcmp(k, "mode")) {
		if (!strcmp(v, "enforce"))
			p->mode = BW_GUARD_ENFORCE;
		else if (!strcmp(v, "monitor"))
			p->mode = BW_GUARD_MONITOR;
		else
			return bw_errf(BW_EINVAL, "mode is enforce or monitor");
	} else if (!strcmp(k, "trust")) {
		/* "trust PATH sha256:HEX" or "trust PATH" */
		char spec[4200];
		const char *sp = strchr(v, ' ');
		if (sp) {
			const char *h = sp;
			while (*h == ' ')
				h++;
			if (strncmp(h, "sha256:", 7))
				return bw_errf(BW_EINVAL, "trust PATH sha256:HEX");
			snprintf(spec, sizeof spec, "%.*s=%s", (int)(sp - v), v, h);
		} else {
			snprintf(spec, sizeof spec, "%s", v);
		}
		return bw_guard_policy_add_trust(p, spec);
	} else if (!strcmp(k, "vault-budget") || !strcmp(k, "copy-max")) {
		if (parse_size(v, &u))
			return bw_errf(BW_EINVAL, "%s: a size such as 4G", k);
		*(k[0] == 'v' ? &p->vault_budget : &p->copy_max) = u;
	} else if (!strcmp(k, "expiry") || !strcmp(k, "window")) {
		if (parse_dur(v, &d) || !d)
			return bw_errf(BW_EINVAL, "%s: a duration such as 7d, 120s", k);
		*(k[0] == 'e' ? &p->expiry_ns : &p->window_ns) = d;
	} else if (!strcmp(k, "freeze-score") || !strcmp(k, "kill-score")) {
		char *end;
		double x = strtod(v, &end);
		if (end == v || *end || !(x >= 0.5 && x <= 100))
			return bw_errf(BW_EINVAL, "%s: a number from 0.5 to 100", k);
		*(k[0] == 'f' ? &p->freeze_score : &p->kill_score) = x;
	} else if (!strcmp(k, "canaries") || !strcmp(k, "syslog") ||
	           !strcmp(k, "strict-reads")) {
		if (parse_bool(v, &b))
			return bw_errf(BW_EINVAL, "%s: yes or no", k);
		*(k[0] == 'c' ? &p->canaries : k[1] == 'y' ? &p->use_syslog
		                                          : &p->strict_reads) = b;
	} else {
		return bw_errf(BW_EINVAL, "unknown setting '%s'", k);
	}
	return 0;
}

int bw_guard_policy_parse(struct bw_guard_policy *p, const char *name,
                          const char *text, size_t len)
{
	if (len > POLICY_FILE_MAX)
		return bw_errf(BW_ETOOBIG, "%s: larger than 1 MiB", name);
	size_t i = 0;
	unsigned lineno = 0;
	char line[POLICY_LINE_MAX];
	while (i < len) {
		size_t s = i;
		while (i < len && text[i] != '\n')
			i++;
		size_t n = i - s;
		i++;
		lineno++;
		if (n >= sizeof line)
			return bw_errf(BW_ETOOBIG, "%s:%u: line too long", name, lineno);
		memcpy(line, text + s, n);
		line[n] = 0;
		if (memchr(line, 0, n))
			return bw_errf(BW_EFORMAT, "%s:%u: NUL byte", name, lineno);
		char *h = strchr(line, '#');
		if (h)
			*h = 0;
		char *k = line;
		while (*k == ' ' || *k == '\t')
			k++;
		char *e = k + strlen(k);
		while (e > k && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			*--e = 0;
		if (!*k)
			continue;
		char *v = k;
		while (*v && *v != ' ' && *v != '\t')
			v++;
		if (!*v)
			return bw_errf(BW_EINVAL, "%s:%u: '%s' needs a value", name, lineno, k);
		*v++ = 0;
		while (*v == ' ' || *v == '\t')
			v++;
		int r = set_kv(p, k, v);
		if (r) {
			char msg[512];
			snprintf(msg, sizeof msg, "%s", bw_err_msg());
			bw_err_clear();
			return bw_errf(r, "%s:%u: %s", name, lineno, msg);
		}
	}
	return 0;
}

int bw_guard_policy_load(struct bw_guard_policy *p, const char *path)
{
	struct bw_buf b;
	bw_buf_init(&b, POLICY_FILE_MAX + 1);
	int r = bw_file_read(path, POLICY_FILE_MAX + 1, &b);
	if (r) {
		bw_buf_release(&b);
		return bw_errf(r, "%s: %s", path, strerror(errno));
	}
	r = bw_guard_policy_parse(p, path, (const char *)b.data, b.len);
	bw_buf_release(&b);
	return r;
}

int bw_guard_file_sha256(const char *path, char hex[65])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bw_from_errno(errno);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int r = BW_EIO;
	if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL))
		goto out;
	uint8_t buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		if (!EVP_DigestUpdate(c, buf, (size_t)n))
			goto out;
	if (n < 0)
		goto out;
	uint8_t md[32];
	unsigned ml = 0;
	if (!EVP_DigestFinal_ex(c, md, &ml) || ml != 32)
		goto out;
	bw_hex_encode(md, 32, hex);
	r = 0;
out:
	EVP_MD_CTX_free(c);
	close(fd);
	return r;
}
