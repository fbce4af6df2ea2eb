/* Error codes and the thread-local detail message. */
#include <bulwark/core.h>

#include <errno.h>
#include <stdio.h>

static _Thread_local char err_msg[512];
static _Thread_local int err_set;

const char *bw_strerror(int code)
{
	switch (code) {
	case BW_OK: return "success";
	case BW_ENOMEM: return "out of memory";
	case BW_EIO: return "input/output error";
	case BW_EINVAL: return "invalid argument";
	case BW_EFORMAT: return "malformed or truncated data";
	case BW_EAUTH: return "authentication failed (data altered or damaged)";
	case BW_ENOENT: return "not found";
	case BW_EEXIST: return "already exists";
	case BW_ETOOBIG: return "size limit exceeded";
	case BW_EPASS: return "wrong passphrase (no key matches)";
	case BW_EVERSION: return "unsupported format version";
	case BW_ENOSPC: return "no space left on device";
	case BW_EPERM: return "permission denied";
	case BW_ECANCELED: return "interrupted";
	case BW_EBUSY: return "in use";
	case BW_EUNSUP: return "not supported";
	case BW_EDAMAGED: return "some objects are damaged";
	}
	return "unknown error";
}

int bw_from_errno(int e)
{
	switch (e) {
	case 0: return BW_EIO;
	case ENOMEM: return BW_ENOMEM;
	case ENOENT: case ENOTDIR: return BW_ENOENT;
	case EEXIST: return BW_EEXIST;
	case ENOSPC: case EDQUOT: return BW_ENOSPC;
	case EACCES: case EPERM: case EROFS: return BW_EPERM;
	case EINVAL: return BW_EINVAL;
	case EFBIG: case E2BIG: case ENAMETOOLONG: return BW_ETOOBIG;
	case EINTR: return BW_ECANCELED;
	case EBUSY: return BW_EBUSY;
	case ENOTSUP: return BW_EUNSUP;
	}
	return BW_EIO;
}

int bw_errf(int code, const char *fmt, ...)
{
	if (!err_set) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err_msg, sizeof err_msg, fmt, ap);
		va_end(ap);
		err_set = 1;
	}
	return code;
}

const char *bw_err_msg(void) { return err_set ? err_msg : ""; }

void bw_err_clear(void)
{
	err_set = 0;
	err_msg[0] = 0;
}
