/* Must match Raised in timerslack.go (checked by TestRaisedMatchesC). */
#define CROSSRUN_RAISED_TIMERSLACK 1000000UL

unsigned long crossrun_host_timerslack(void);
