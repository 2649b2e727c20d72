//go:build linux && cgo

#include <sys/prctl.h>

#include "timerslack.h"

static unsigned long host_slack;

/*
 * Raise the main thread's timer slack before the Go runtime starts any
 * thread, so that every thread it starts, sysmon first, inherits it.
 * PR_GET_TIMERSLACK returns 0 for a real-time thread, which has no slack.
 */
__attribute__((constructor)) static void crossrun_timerslack(void)
{
	int cur = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);

	if (cur <= 0 || (unsigned long)cur >= CROSSRUN_RAISED_TIMERSLACK)
		return;
	if (prctl(PR_SET_TIMERSLACK, CROSSRUN_RAISED_TIMERSLACK, 0, 0, 0) == 0)
		host_slack = (unsigned long)cur;
}

unsigned long crossrun_host_timerslack(void)
{
	return host_slack;
}
