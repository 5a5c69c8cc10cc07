/*
 * th_proc.c - child processes for the harness: long-running ones (siphon itself) whose output
 * goes to a log file the test can search and print, and run-to-completion commands (initdb,
 * pg_ctl, `siphon validate`) whose stdout and stderr come back as strings.
 *
 * Every child gets PR_SET_PDEATHSIG(SIGKILL) so it cannot outlive a test that was killed, and
 * inherits no descriptor beyond 0-2: a leaked socket (a libpq connection, a mock broker's
 * listener) held open by a child would hide a disconnect the test is trying to cause.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness_int.h"

struct th_proc {
    pid_t pid;
    int exited;    /* reaped */
    int exit_code; /* valid when exited */
    char *log_path;
};

static int th__decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* In the child, after fork: die with the parent, stdin from /dev/null, out/err to the given
 * descriptors, nothing else open. */
static void th__child_setup(pid_t parent, int outfd, int errfd, const char *cwd,
                            char *const extra_env[])
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    /* Undo the parent's signal dispositions that exec would keep (ignored SIGPIPE). */
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
        dup2(devnull, 0);
    }
    if (outfd >= 0)
        dup2(outfd, 1);
    if (errfd >= 0)
        dup2(errfd, 2);
    th__close_from(3);
    if (cwd && chdir(cwd) != 0)
        _exit(126);
    for (int i = 0; extra_env && extra_env[i]; i++)
        putenv(extra_env[i]);
}

th_proc_t *th_proc_spawn(char *const argv[], const char *log_path)
{
    th__cleanup_init();
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        th_err("could not open log file \"%s\": %s", log_path, strerror(errno));
        return NULL;
    }
    th_proc_t *p = calloc(1, sizeof(*p));
    if (!p)
        abort();
    p->log_path = strdup(log_path);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        th_err("could not fork for \"%s\": %s", argv[0], strerror(errno));
        close(fd);
        free(p->log_path);
        free(p);
        return NULL;
    }
    if (pid == 0) {
        th__child_setup(parent, fd, fd, NULL, NULL);
        execvp(argv[0], argv);
        dprintf(2, "harness: could not execute \"%s\": %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    p->pid = pid;
    th__register_pid(pid, TH_PID_CHILD);
    return p;
}

th_proc_t *th_siphon_start(const char *config_path, const char *log_path)
{
    const char *bin = th_siphon_bin();
    if (!bin)
        return NULL;
    if (access(bin, X_OK) != 0) {
        th_err("could not execute siphon at \"%s\": %s (build the `siphon` target first)", bin,
               strerror(errno));
        return NULL;
    }
    char *const argv[] = {(char *)bin, "run", "--config", (char *)config_path, NULL};
    return th_proc_spawn(argv, log_path);
}

pid_t th_proc_pid(const th_proc_t *p)
{
    return p->pid;
}

const char *th_proc_log_path(const th_proc_t *p)
{
    return p->log_path;
}

static int th__reap(th_proc_t *p, int block)
{
    if (p->exited)
        return 1;
    int st;
    pid_t r;
    do {
        r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
    } while (r == -1 && errno == EINTR);
    if (r == p->pid) {
        p->exited = 1;
        p->exit_code = th__decode_status(st);
        th__unregister_pid(p->pid);
        return 1;
    }
    if (r == -1 && errno == ECHILD) {
        /* Reaped elsewhere (the cleanup path): treat as gone. */
        p->exited = 1;
        p->exit_code = -1;
        th__unregister_pid(p->pid);
        return 1;
    }
    return 0;
}

int th_proc_signal(th_proc_t *p, int sig)
{
    if (th__reap(p, 0))
        return 0;
    if (kill(p->pid, sig) != 0)
        return th_err("could not send signal %d to pid %d: %s", sig, (int)p->pid, strerror(errno));
    return 0;
}

int th_proc_wait(th_proc_t *p, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    for (;;) {
        if (th__reap(p, 0))
            return 1;
        if (th_now_ms() >= deadline)
            return 0;
        th_sleep_ms(5);
    }
}

int th_proc_running(th_proc_t *p)
{
    return !th__reap(p, 0);
}

int th_proc_exit_code(const th_proc_t *p)
{
    return p->exited ? p->exit_code : -1;
}

int th_proc_wait_log(th_proc_t *p, const char *needle, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    for (;;) {
        if (th_file_contains(p->log_path, needle))
            return 1;
        if (!th_proc_running(p)) /* one last look: it may have written and exited */
            return th_file_contains(p->log_path, needle);
        if (th_now_ms() >= deadline)
            return 0;
        th_sleep_ms(20);
    }
}

static void th__dump_file_tail(const char *title, const char *path, int max_lines)
{
    char *s = th_read_file(path, NULL, 1);
    fflush(stdout);
    fprintf(stderr, "----- %s (%s) -----\n", title, path);
    if (!s) {
        fprintf(stderr, "(unreadable)\n");
    } else {
        const char *start = s;
        if (max_lines > 0) {
            int lines = 0;
            size_t n = strlen(s);
            for (size_t i = n; i > 0; i--) {
                if (s[i - 1] == '\n' && i != n && ++lines >= max_lines) {
                    start = s + i;
                    fprintf(stderr, "[... earlier lines omitted ...]\n");
                    break;
                }
            }
        }
        fputs(start, stderr);
        if (*start && start[strlen(start) - 1] != '\n')
            fputc('\n', stderr);
    }
    fprintf(stderr, "----- end of %s -----\n", title);
    fflush(stderr);
    free(s);
}

void th_proc_dump_log(const th_proc_t *p, int max_lines)
{
    char title[64];
    snprintf(title, sizeof(title), "log of pid %d", (int)p->pid);
    th__dump_file_tail(title, p->log_path, max_lines);
}

void th__dump_path(const char *title, const char *path, int max_lines)
{
    th__dump_file_tail(title, path, max_lines);
}

void th_proc_destroy(th_proc_t *p)
{
    if (!p)
        return;
    if (!th__reap(p, 0)) {
        kill(p->pid, SIGKILL);
        th__reap(p, 1);
    }
    free(p->log_path);
    free(p);
}

/* ---- run to completion ---- */

static int th__tmpfile(char *tmpl)
{
    int fd = mkstemp(tmpl);
    if (fd >= 0)
        unlink(tmpl);
    return fd;
}

static char *th__slurp_fd(int fd)
{
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0)
        end = 0;
    char *s = malloc((size_t)end + 1);
    if (!s)
        abort();
    size_t got = 0;
    while (got < (size_t)end) {
        ssize_t r = pread(fd, s + got, (size_t)end - got, (off_t)got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    s[got] = '\0';
    return s;
}

int th__run_full(char *const argv[], char *const extra_env[], const char *cwd, int timeout_ms,
                 int *exit_code, char **out, char **err)
{
    th__cleanup_init();
    char otmpl[] = "/tmp/th-out-XXXXXX", etmpl[] = "/tmp/th-err-XXXXXX";
    int ofd = th__tmpfile(otmpl), efd = th__tmpfile(etmpl);
    if (ofd < 0 || efd < 0) {
        if (ofd >= 0)
            close(ofd);
        if (efd >= 0)
            close(efd);
        return th_err("could not create capture files in /tmp: %s", strerror(errno));
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(ofd);
        close(efd);
        return th_err("could not fork for \"%s\": %s", argv[0], strerror(errno));
    }
    if (pid == 0) {
        th__child_setup(parent, ofd, efd, cwd, extra_env);
        execvp(argv[0], argv);
        dprintf(2, "harness: could not execute \"%s\": %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    th__register_pid(pid, TH_PID_CHILD);
    th_proc_t p = {.pid = pid};
    int done = th_proc_wait(&p, timeout_ms);
    int rc = 0;
    if (!done) {
        kill(pid, SIGKILL);
        th__reap(&p, 1);
        rc = th_err("\"%s\" did not finish within %d ms; killed", argv[0], timeout_ms);
    }
    if (exit_code)
        *exit_code = p.exit_code;
    if (out)
        *out = th__slurp_fd(ofd);
    if (err)
        *err = th__slurp_fd(efd);
    close(ofd);
    close(efd);
    return rc;
}

int th_run(char *const argv[], char *const extra_env[], int timeout_ms, int *exit_code,
           char **out, char **err)
{
    return th__run_full(argv, extra_env, NULL, timeout_ms, exit_code, out, err);
}
