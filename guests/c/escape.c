/*
 * escape: given a preopen /data, tries to read files outside it and prints one line per attempt:
 *   "<name>: denied (<error>)"  or  "<name>: ESCAPED <first line of the file>"
 * Exit status 0 if nothing escaped, 1 if anything did.
 *
 *   dotdot           open("/data/../etc/passwd")   (wasi-libc sends "../etc/passwd" on the /data fd)
 *   dotdot-relative  chdir("/data"), open("../etc/passwd")
 *   dotdot-raw       path_open(<fd of /data>, "../../../../etc/passwd") straight to the host
 *   absolute         open("/etc/passwd")
 *   symlink          open("/data/link")            (test makes link -> /etc/passwd)
 *   symlink-dir      open("/data/dirlink/passwd")  (test makes dirlink -> /etc)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

static int escaped = 0;

static void report_fd(const char *name, int fd) {
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0) {
        printf("%s: denied (opened, but read failed: %s)\n", name, strerror(errno));
        close(fd);
        return;
    }
    buf[n] = 0;
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    printf("%s: ESCAPED %s\n", name, buf);
    escaped = 1;
    close(fd);
}

static void try_open(const char *name, const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("%s: denied (%s)\n", name, strerror(errno));
        return;
    }
    report_fd(name, fd);
}

/* The fd of the preopen named "/data" (or "data"), or -1. */
static int data_preopen(void) {
    for (__wasi_fd_t fd = 3; fd < 64; fd++) {
        __wasi_prestat_t ps;
        if (__wasi_fd_prestat_get(fd, &ps) != 0) continue;
        if (ps.tag != __WASI_PREOPENTYPE_DIR) continue;
        char name[256];
        size_t len = ps.u.dir.pr_name_len;
        if (len >= sizeof name) continue;
        if (__wasi_fd_prestat_dir_name(fd, (uint8_t *)name, len) != 0) continue;
        name[len] = 0;
        while (len > 1 && name[len - 1] == '/') name[--len] = 0;
        if (strcmp(name, "/data") == 0 || strcmp(name, "data") == 0) return (int)fd;
    }
    return -1;
}

static void try_raw(const char *name, const char *rel) {
    int dir = data_preopen();
    if (dir < 0) {
        printf("%s: denied (no /data preopen)\n", name);
        return;
    }
    __wasi_fd_t fd;
    __wasi_errno_t err = __wasi_path_open((__wasi_fd_t)dir, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, rel, 0,
                                          __WASI_RIGHTS_FD_READ, 0, 0, &fd);
    if (err != 0) {
        printf("%s: denied (%s)\n", name, strerror(err));
        return;
    }
    report_fd(name, (int)fd);
}

int main(void) {
    try_open("dotdot", "/data/../etc/passwd");
    if (chdir("/data") == 0) {
        try_open("dotdot-relative", "../etc/passwd");
    } else {
        printf("dotdot-relative: denied (chdir /data: %s)\n", strerror(errno));
    }
    try_raw("dotdot-raw", "../../../../etc/passwd");
    try_open("absolute", "/etc/passwd");
    try_open("symlink", "/data/link");
    try_open("symlink-dir", "/data/dirlink/passwd");
    fflush(stdout);
    return escaped;
}
