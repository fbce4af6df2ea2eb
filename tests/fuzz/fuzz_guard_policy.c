/* libFuzzer target: the guard's settings file parser. */
#include <bulwark/guard.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bw_guard_policy p;
	bw_guard_policy_defaults(&p);
	bw_err_clear();
	if (bw_guard_policy_parse(&p, "fuzz", (const char *)data, size) == 0) {
		/* what parsed must be within its bounds */
		if (p.nprotect > BW_GUARD_MAX_PROTECT || p.ntrust > BW_GUARD_MAX_TRUST ||
		    p.freeze_score < 0.5 || p.kill_score < 0.5 || !p.window_ns)
			abort();
		for (int i = 0; i < p.nprotect; i++)
			if (p.protect[i][0] != '/')
				abort();
	}
	return 0;
}
