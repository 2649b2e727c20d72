//go:build linux && cgo

// The nsenter constructor joins namespaces that a multi-threaded process
// cannot join (user and mount) before the Go runtime starts any thread.
//
// It acts only when _CROSSRUN_NSENTER is set, to a comma-separated list of
// TYPE:PATH entries (TYPE is a /proc/PID/ns name: user, mnt, net, ipc, uts,
// cgroup, time, pid). All paths are opened first, then joined with the user
// namespace first, so that the others are entered with the privileges it
// grants. With a pid entry it then forks: the child goes on inside the pid
// namespace, the parent reports the child's pid ({"type":"pid","data":N})
// and exits. On failure it reports on the sync socket named by
// _CROSSRUN_SYNC (crossrun's framing: a 4-byte big-endian length and a JSON
// message) and exits.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#define MAX_NS 16

struct ns_entry {
	int flag;
	int fd;
	char name[16];
	char path[4096];
};

static void report(const char *fmt, const char *a, const char *b, int err)
{
	char msg[1024], json[2048];
	int n;
	const char *env = getenv("_CROSSRUN_SYNC");

	snprintf(msg, sizeof(msg), fmt, a, b);
	if (err)
		snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), ": %s", strerror(err));
	/* msg holds paths and strerror text: escape what JSON needs. */
	n = snprintf(json, sizeof(json), "{\"type\":\"error\",\"message\":\"container init: ");
	for (const char *p = msg; *p && n < (int)sizeof(json) - 8; p++) {
		if (*p == '"' || *p == '\\')
			json[n++] = '\\';
		json[n++] = (*p == '\n') ? ' ' : *p;
	}
	n += snprintf(json + n, sizeof(json) - n, "\"}");
	if (env) {
		int fd = atoi(env);
		unsigned char hdr[4] = { (n >> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff };
		if (write(fd, hdr, 4) == 4 && write(fd, json, n) == n)
			_exit(1);
	}
	fprintf(stderr, "crossrun: %s\n", msg);
	_exit(1);
}

static int ns_flag(const char *name)
{
	static const struct { const char *name; int flag; } table[] = {
		{ "user", CLONE_NEWUSER }, { "mnt", CLONE_NEWNS }, { "net", CLONE_NEWNET },
		{ "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS }, { "cgroup", CLONE_NEWCGROUP },
		{ "pid", CLONE_NEWPID },
#ifdef CLONE_NEWTIME
		{ "time", CLONE_NEWTIME },
#endif
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, name) == 0)
			return table[i].flag;
	return 0;
}

/*
 * join_cgroups moves this process, still single-threaded, into the v1
 * cgroups whose tasks files _CROSSRUN_CGROUP_TASKS lists (one per line),
 * before any namespace is joined. A thread moving itself does not take the
 * kernel's global migration lock, whose write side waits for an RCU grace
 * period; writing a pid into cgroup.procs from the parent would.
 */
static void join_cgroups(void)
{
	const char *list = getenv("_CROSSRUN_CGROUP_TASKS");
	int best_effort = getenv("_CROSSRUN_CGROUP_BEST_EFFORT") != NULL;
	char buf[8192];

	if (list == NULL || *list == '\0')
		return;
	if (strlen(list) >= sizeof(buf))
		report("cgroup list %s%s is too long", "", "", 0);
	strcpy(buf, list);
	for (char *save = NULL, *path = strtok_r(buf, "\n", &save); path; path = strtok_r(NULL, "\n", &save)) {
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		int err = 0;

		if (fd < 0)
			err = errno;
		else if (write(fd, "0", 1) != 1)
			err = errno;
		if (fd >= 0)
			close(fd);
		if (err == 0 || (best_effort && (err == EACCES || err == EPERM || err == EROFS)))
			continue;
		if (err == ENOENT)
			report("join the container's cgroup: %s is gone%s; the container is being deleted", path, "", 0);
		report("join the container's cgroup %s%s", path, "", err);
	}
	unsetenv("_CROSSRUN_CGROUP_TASKS");
	unsetenv("_CROSSRUN_CGROUP_BEST_EFFORT");
}

/*
 * setns on a pid namespace applies to the children made afterwards, so the
 * process that goes on is a child forked here, once every other namespace
 * is joined: nothing in the container ever sees a crossrun process that is
 * outside the container's mount namespace (its /proc/PID/root and cwd the
 * host's), or running the host's crossrun file. The parent reports the
 * child's pid (as crossrun sees it) on the sync socket and exits; crossrun,
 * a child subreaper, adopts the child.
 */
static void fork_into_pid_namespace(void)
{
	const char *env = getenv("_CROSSRUN_SYNC");
	char json[64];
	pid_t child;
	int n;

	if (env == NULL)
		report("fork into the pid namespace: no sync socket%s%s", "", "", 0);
	child = fork();
	if (child < 0)
		report("fork into the pid namespace%s%s", "", "", errno);
	if (child == 0)
		return;
	n = snprintf(json, sizeof(json), "{\"type\":\"pid\",\"data\":%d}", (int)child);
	{
		int fd = atoi(env);
		unsigned char hdr[4] = { (n >> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff };
		if (write(fd, hdr, 4) != 4 || write(fd, json, n) != n) {
			kill(child, SIGKILL);
			_exit(1);
		}
	}
	_exit(0);
}

__attribute__((constructor)) static void crossrun_nsenter(void)
{
	const char *spec = getenv("_CROSSRUN_NSENTER");
	struct ns_entry ns[MAX_NS];
	int count = 0;
	char buf[8192];

	/*
	 * One malloc arena for the whole process. The Go runtime starts its
	 * threads with pthread_create, and each one's first malloc made glibc
	 * reserve, trim and open up a new arena (an mmap of 128 MB, two
	 * munmaps and an mprotect); with a handful of threads in every
	 * crossrun process that was about 0.25 ms of each start. Go allocates
	 * with its own allocator, so C allocations are few and tiny. (musl's
	 * malloc has no per-thread arenas, nor this setting.)
	 */
#ifdef M_ARENA_MAX
	mallopt(M_ARENA_MAX, 1);
#endif

	join_cgroups();
	if (spec == NULL || *spec == '\0')
		return;
	/* Non-dumpable before entering the container's namespaces. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		report("prctl(PR_SET_DUMPABLE)%s%s", "", "", errno);
	if (strlen(spec) >= sizeof(buf))
		report("namespace list %s%s is too long", "", "", 0);
	strcpy(buf, spec);

	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		if (colon == NULL || count == MAX_NS)
			report("bad namespace entry %s%s", tok, "", 0);
		*colon = '\0';
		if (strlen(tok) >= sizeof(ns[count].name) || strlen(colon + 1) >= sizeof(ns[count].path))
			report("bad namespace entry %s:%s", tok, colon + 1, 0);
		strcpy(ns[count].name, tok);
		strcpy(ns[count].path, colon + 1);
		ns[count].flag = ns_flag(tok);
		if (ns[count].flag == 0)
			report("unknown namespace type %s%s", tok, "", 0);
		ns[count].fd = open(ns[count].path, O_RDONLY | O_CLOEXEC);
		if (ns[count].fd < 0)
			report("open %s namespace %s", tok, ns[count].path, errno);
		count++;
	}

	/* The user namespace first: it grants the rights to join the rest. */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < count; i++) {
			int is_user = ns[i].flag == CLONE_NEWUSER;
			if ((pass == 0) != is_user)
				continue;
			if (setns(ns[i].fd, ns[i].flag) < 0)
				report("join %s namespace %s", ns[i].name, ns[i].path, errno);
			close(ns[i].fd);
		}
	}
	for (int i = 0; i < count; i++) {
		if (ns[i].flag == CLONE_NEWPID) {
			fork_into_pid_namespace();
			break;
		}
	}
	if (unsetenv("_CROSSRUN_NSENTER") < 0)
		report("unsetenv%s%s", "", "", errno);
}
