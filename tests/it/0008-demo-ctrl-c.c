/*
 * 0008-demo-ctrl-c - `make demo` stopped with Ctrl-C leaves nothing behind.
 *
 * Runs the demo program (siphon-demo, what `make demo` executes) as a terminal would: in its own
 * process group, on a small scale. Once it is streaming and playing the ERP activity, the test
 * does what Ctrl-C does: SIGINT to the whole foreground process group (the demo, siphon, siphon
 * tail, the throwaway PostgreSQL). Then it checks that the demo ended within seconds, that no
 * process of that group is left, and that none of the temporary directories the demo created
 * (the harness marks each with an owner.pid file naming its creator) remains. A second run is
 * interrupted earlier, while PostgreSQL is being loaded, where a half-started server is the
 * thing most likely to be left running.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "it_check.h"

/* The demo program beside the siphon binary. Caller frees. */
static char *demo_bin(void)
{
    const char *bin = th_siphon_bin();
    assert_non_null(bin);
    char *dir = strdup(bin);
    assert_non_null(dir);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    char *p = th_path(slash ? dir : ".", "siphon-demo");
    free(dir);
    return p;
}

/* Start the demo in a new session (its own process group, as a shell job is). */
static pid_t demo_start(const char *log_path)
{
    char *bin = demo_bin();
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setsid();
        dup2(fd, 1);
        dup2(fd, 2);
        setenv("DEMO_SCALE", "3", 1);
        unsetenv("TH_KEEP"); /* the check below is about what the demo leaves */
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    close(fd);
    free(bin);
    return pid;
}

/* Wait until the log holds needle (or the demo ended): 0 when found. */
static int wait_log(const char *log_path, pid_t pid, const char *needle, int timeout_ms)
{
    for (int64_t until = th_now_ms() + timeout_ms; th_now_ms() < until; th_sleep_ms(100)) {
        char *log = th_read_file(log_path, NULL, 1);
        int found = log && strstr(log, needle);
        free(log);
        if (found)
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
    }
    return -1;
}

/* Reap pid within timeout_ms: 0 when it ended. */
static int reap(pid_t pid, int timeout_ms)
{
    for (int64_t until = th_now_ms() + timeout_ms; th_now_ms() < until; th_sleep_ms(50)) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return 0;
    }
    return -1;
}

/* Processes still in process group pgid (from /proc/<pid>/stat field 5). */
static int group_members(pid_t pgid)
{
    int n = 0;
    DIR *d = opendir("/proc");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        char *stat = th_read_file(path, NULL, 1);
        const char *rp = stat ? strrchr(stat, ')') : NULL;
        char state = 0;
        int ppid = 0, pg = 0;
        if (rp && sscanf(rp + 1, " %c %d %d", &state, &ppid, &pg) == 3 && pg == pgid &&
            state != 'Z') {
            th_err("left behind: pid %s in the demo's process group: %.120s", e->d_name, stat);
            n++;
        }
        free(stat);
    }
    closedir(d);
    return n;
}

/* Harness temp dirs under /tmp created by process owner (owner.pid), still present. */
static int dirs_of(pid_t owner)
{
    int n = 0;
    DIR *d = opendir("/tmp");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "siphon-it-", 10) != 0)
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/tmp/%s/owner.pid", e->d_name);
        char *txt = th_read_file(path, NULL, 1);
        if (txt && atoi(txt) == (int)owner) {
            th_err("left behind: /tmp/%s", e->d_name);
            n++;
        }
        free(txt);
    }
    closedir(d);
    return n;
}

static void interrupt_at(const char *needle, int timeout_ms)
{
    char *dir = th_tempdir();
    assert_non_null(dir);
    char *log = th_path(dir, "demo.log");
    pid_t pid = demo_start(log);
    if (wait_log(log, pid, needle, timeout_ms) != 0) {
        char *txt = th_read_file(log, NULL, 1);
        fprintf(stderr, "demo log:\n%s\n", txt ? txt : "(none)");
        free(txt);
        kill(-pid, SIGKILL);
        fail_msg("the demo never printed \"%s\"", needle);
    }
    th_log("Ctrl-C (SIGINT to the process group) after \"%s\"", needle);
    assert_int_equal(kill(-pid, SIGINT), 0);
    int ended = reap(pid, 30000) == 0;
    if (!ended) {
        kill(-pid, SIGKILL);
        reap(pid, 5000);
    }
    th_sleep_ms(300); /* children killed by the demo's cleanup are reaped by init */
    int procs = group_members(pid), dirs = dirs_of(pid);
    if (!ended || procs || dirs) {
        char *txt = th_read_file(log, NULL, 1);
        fprintf(stderr, "demo log:\n%s\n", txt ? txt : "(none)");
        free(txt);
    }
    assert_true(ended);
    assert_int_equal(procs, 0);
    assert_int_equal(dirs, 0);
    th_tempdir_remove(dir);
    free(log);
    free(dir);
}

/* Mid-demo: streaming, the activity script running, siphon tail following the files. */
static void test_ctrl_c_while_streaming(void **state)
{
    (void)state;
    interrupt_at("ERP> SELECT erp_activity(1)", 180000);
}

/* Early: while the throwaway PostgreSQL is being started and loaded. */
static void test_ctrl_c_while_loading(void **state)
{
    (void)state;
    interrupt_at("loading the legacy ERP", 120000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctrl_c_while_streaming),
        cmocka_unit_test(test_ctrl_c_while_loading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
