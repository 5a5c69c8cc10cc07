/*
 * th_util.c - the harness's general helpers (time, progress lines, files, temp dirs, LSNs) and
 * its cleanup registry.
 *
 * Cleanup design: a test may end in four ways: it tears down what it started (the normal
 * path), it returns/exits with things still running (atexit handler), it receives a fatal
 * signal (signal handler: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT), or it is SIGKILLed
 * (ctest's timeout: nothing can run). For the first three, the registry below knows every
 * postmaster, child process and temp dir still alive and stops/removes them. For the last,
 * children die with us through PR_SET_PDEATHSIG, and the temp dirs (each holding owner.pid)
 * are swept by the next harness user whose th__cleanup_init() finds their owner gone. The
 * registry is the one piece of global mutable state the harness keeps: a signal handler
 * cannot reach anything else.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness_int.h"

#define TH_MAX_DIRS 64
#define TH_MAX_PIDS 64
#define TH_DIR_LEN 256

static struct {
    pthread_mutex_t mu;
    char dirs[TH_MAX_DIRS][TH_DIR_LEN];
    volatile sig_atomic_t ndirs_used[TH_MAX_DIRS];
    volatile pid_t pids[TH_MAX_PIDS];
    volatile int pid_kind[TH_MAX_PIDS];
    volatile sig_atomic_t cleaning;
    int64_t t0;
} th_reg = {.mu = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t th_once = PTHREAD_ONCE_INIT;

int64_t th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void th_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

void th_log(const char *fmt, ...)
{
    th__cleanup_init();
    int64_t t = th_now_ms() - th_reg.t0;
    va_list ap;
    char line[2048];
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stdout, "[%4lld.%03llds] %s\n", (long long)(t / 1000), (long long)(t % 1000), line);
    fflush(stdout);
}

int th_err(const char *fmt, ...)
{
    va_list ap;
    char line[4096];
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "harness: %s\n", line);
    fflush(stderr);
    return -1;
}

const char *th_source_dir(void)
{
    const char *s = getenv("SIPHON_SOURCE_DIR");
    if (s && *s)
        return s;
    /* Not run by ctest (a benchmark run by hand): this file's own path, minus
     * "/tests/harness/th_util.c", is the source tree it was built from. */
    static char dir[4096];
    if (!dir[0]) {
        const char *me = __FILE__;
        const char *tail = strstr(me, "/tests/harness/th_util.c");
        if (me[0] == '/' && tail && (size_t)(tail - me) < sizeof(dir))
            memcpy(dir, me, (size_t)(tail - me));
        else
            strcpy(dir, ".");
    }
    return dir;
}

const char *th_siphon_bin(void)
{
    const char *s = getenv("SIPHON_BIN");
    if (s && *s)
        return s;
    th_err("SIPHON_BIN is not set: run the test through ctest, or export "
           "SIPHON_BIN=<build>/siphon");
    return NULL;
}

unsigned th_seed(void)
{
    const char *s = getenv("TH_SEED");
    unsigned seed;
    if (s && *s) {
        seed = (unsigned)strtoul(s, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (unsigned)(ts.tv_sec ^ (ts.tv_nsec >> 3) ^ ((unsigned)getpid() << 16));
    }
    th_log("random seed %u (rerun with TH_SEED=%u)", seed, seed);
    return seed;
}

char *th_read_file(const char *path, size_t *len, int quiet)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (!quiet)
            th_err("could not open \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        if (!quiet)
            th_err("could not read \"%s\"", path);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int th_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return th_err("could not create \"%s\": %s", path, strerror(errno));
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        return th_err("could not write \"%s\": %s", path, strerror(errno));
    return 0;
}

int th_file_contains(const char *path, const char *needle)
{
    char *s = th_read_file(path, NULL, 1);
    int found = s && strstr(s, needle) != NULL;
    free(s);
    return found;
}

char *th_strf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0)
        abort();
    return s;
}

char *th_path(const char *dir, const char *name)
{
    return th_strf("%s/%s", dir, name);
}

int th_lsn_parse(const char *text, uint64_t *out)
{
    unsigned hi, lo;
    char extra;
    if (!text || sscanf(text, "%X/%X%c", &hi, &lo, &extra) != 2)
        return -1;
    *out = ((uint64_t)hi << 32) | lo;
    return 0;
}

void th_lsn_format(uint64_t lsn, char *buf, size_t size)
{
    snprintf(buf, size, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}

/* ---- temp dirs ---- */

char *th_tempdir(void)
{
    th__cleanup_init();
    char tmpl[] = "/tmp/siphon-it-XXXXXX";
    if (!mkdtemp(tmpl)) {
        th_err("could not create a temporary directory under /tmp: %s", strerror(errno));
        return NULL;
    }
    char *dir = strdup(tmpl);
    if (!dir)
        abort();
    char *owner = th_path(dir, "owner.pid");
    char pidtxt[32];
    snprintf(pidtxt, sizeof(pidtxt), "%d\n", (int)getpid());
    th_write_file(owner, pidtxt);
    free(owner);
    th__register_dir(dir);
    return dir;
}

void th_tempdir_remove(const char *dir)
{
    if (!dir)
        return;
    th__unregister_dir(dir);
    const char *keep = getenv("TH_KEEP");
    if (keep && *keep && strcmp(keep, "0") != 0) {
        fprintf(stderr, "harness: TH_KEEP set, keeping %s\n", dir);
        return;
    }
    th__rmrf(dir);
}

/* ---- the cleanup registry ---- */

void th__close_from(int lowfd)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = lowfd; fd < max; fd++)
        close(fd);
}

void th__rmrf(const char *dir)
{
    if (!dir || !dir[0] || strcmp(dir, "/") == 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        char *const argv[] = {"rm", "-rf", (char *)dir, NULL};
        th__close_from(3);
        execv("/bin/rm", argv);
        _exit(127);
    }
    if (pid > 0) {
        int st;
        while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
            ;
    }
}

/* Async-signal-safe: kill(), open(), read(), close() only. */
int th_pid_alive(pid_t pid)
{
    if (pid <= 0 || kill(pid, 0) != 0)
        return 0;
    char path[64] = "/proc/";
    char num[24];
    int n = 0;
    for (pid_t v = pid; v > 0 && n < 20; v /= 10)
        num[n++] = (char)('0' + v % 10);
    size_t len = 6;
    while (n > 0)
        path[len++] = num[--n];
    memcpy(path + len, "/stat", 6);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    char buf[256];
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    /* "pid (comm) S ...": the state follows the last ')' */
    char *paren = NULL;
    for (ssize_t i = 0; i < r; i++)
        if (buf[i] == ')')
            paren = buf + i;
    if (paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'))
        return 0;
    return 1;
}

void th__kill_postmaster(pid_t pid, int wait_ms)
{
    if (pid <= 0)
        return;
    if (kill(pid, SIGQUIT) != 0)
        return;
    struct timespec ts = {0, 10 * 1000000L};
    for (int waited = 0; waited < wait_ms; waited += 10) {
        if (!th_pid_alive(pid))
            return;
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    for (int waited = 0; waited < 2000; waited += 10) {
        if (!th_pid_alive(pid))
            return;
        nanosleep(&ts, NULL);
    }
}

/* Stop everything still registered. Runs in the atexit handler and in the signal handler, so
 * it only uses async-signal-safe calls. */
static void th__cleanup_all(void)
{
    if (th_reg.cleaning)
        return;
    th_reg.cleaning = 1;
    for (int i = 0; i < TH_MAX_PIDS; i++) {
        pid_t pid = th_reg.pids[i];
        if (pid > 0 && th_reg.pid_kind[i] == TH_PID_CHILD) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            th_reg.pids[i] = 0;
        }
    }
    for (int i = 0; i < TH_MAX_PIDS; i++) {
        pid_t pid = th_reg.pids[i];
        if (pid > 0 && th_reg.pid_kind[i] == TH_PID_POSTMASTER) {
            th__kill_postmaster(pid, 5000);
            th_reg.pids[i] = 0;
        }
    }
    const char *keep = getenv("TH_KEEP");
    int keeping = keep && *keep && strcmp(keep, "0") != 0;
    for (int i = 0; i < TH_MAX_DIRS; i++) {
        if (th_reg.ndirs_used[i]) {
            if (!keeping)
                th__rmrf(th_reg.dirs[i]);
            th_reg.ndirs_used[i] = 0;
        }
    }
    th_reg.cleaning = 0;
}

static void th__atexit(void)
{
    th__cleanup_all();
}

static void th__on_signal(int sig)
{
    static const char msg[] = "harness: fatal signal, stopping servers and removing temp dirs\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
    th__cleanup_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static pid_t th__read_pid(const char *path)
{
    char *s = th_read_file(path, NULL, 1);
    pid_t pid = s ? (pid_t)atoi(s) : 0;
    free(s);
    return pid;
}

/* Remove /tmp/siphon-it-* dirs whose owner process is gone (a SIGKILLed earlier run). */
static void th__sweep_stale(void)
{
    DIR *d = opendir("/tmp");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "siphon-it-", 10) != 0)
            continue;
        char *dir = th_path("/tmp", de->d_name);
        char *owner = th_path(dir, "owner.pid");
        pid_t pid = th__read_pid(owner);
        if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) {
            char *pmfile = th_path(dir, "data/postmaster.pid");
            pid_t pm = th__read_pid(pmfile);
            if (pm > 0)
                th__kill_postmaster(pm, 5000);
            fprintf(stderr, "harness: removing %s left by dead test process %d\n", dir, (int)pid);
            th__rmrf(dir);
            free(pmfile);
        }
        free(owner);
        free(dir);
    }
    closedir(d);
}

static void th__init_once(void)
{
    th_reg.t0 = th_now_ms();
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = th__on_signal;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    atexit(th__atexit);
    const char *keep = getenv("TH_KEEP");
    if (!(keep && *keep && strcmp(keep, "0") != 0)) /* keeping: leave earlier runs' dirs too */
        th__sweep_stale();
}

void th__cleanup_init(void)
{
    pthread_once(&th_once, th__init_once);
}

void th__register_dir(const char *dir)
{
    th__cleanup_init();
    if (strlen(dir) >= TH_DIR_LEN) {
        th_err("temp dir path too long to register: %s", dir);
        return;
    }
    pthread_mutex_lock(&th_reg.mu);
    for (int i = 0; i < TH_MAX_DIRS; i++) {
        if (!th_reg.ndirs_used[i]) {
            strcpy(th_reg.dirs[i], dir);
            th_reg.ndirs_used[i] = 1;
            pthread_mutex_unlock(&th_reg.mu);
            return;
        }
    }
    pthread_mutex_unlock(&th_reg.mu);
    th_err("too many temp dirs registered; %s will not be removed at exit", dir);
}

void th__unregister_dir(const char *dir)
{
    pthread_mutex_lock(&th_reg.mu);
    for (int i = 0; i < TH_MAX_DIRS; i++) {
        if (th_reg.ndirs_used[i] && strcmp(th_reg.dirs[i], dir) == 0) {
            th_reg.ndirs_used[i] = 0;
            break;
        }
    }
    pthread_mutex_unlock(&th_reg.mu);
}

void th__register_pid(pid_t pid, int kind)
{
    th__cleanup_init();
    pthread_mutex_lock(&th_reg.mu);
    for (int i = 0; i < TH_MAX_PIDS; i++) {
        if (th_reg.pids[i] == 0) {
            th_reg.pid_kind[i] = kind;
            th_reg.pids[i] = pid;
            pthread_mutex_unlock(&th_reg.mu);
            return;
        }
    }
    pthread_mutex_unlock(&th_reg.mu);
    th_err("too many processes registered; pid %d will not be stopped at exit", (int)pid);
}

void th__unregister_pid(pid_t pid)
{
    pthread_mutex_lock(&th_reg.mu);
    for (int i = 0; i < TH_MAX_PIDS; i++) {
        if (th_reg.pids[i] == pid) {
            th_reg.pids[i] = 0;
            break;
        }
    }
    pthread_mutex_unlock(&th_reg.mu);
}
