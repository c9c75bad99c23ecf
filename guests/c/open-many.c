// open-many: a hostile guest that holds files open until the host says no.
//
//   open-many [DIR [MAX]]   (DIR defaults to /d, MAX to 100000)
//
// Creates DIR/open-many.tmp, then opens it again and again without closing, printing
// "opened N" after every 100 (flushed: a guest stopped by a limit keeps what it printed).
// When an open fails it prints "open failed after N: <error>" and exits 0; after MAX opens it
// prints "opened all N" and exits 0. Exit 2 if DIR/open-many.tmp cannot be created.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/d";
    long max = argc > 2 ? atol(argv[2]) : 100000;
    char path[4096];
    snprintf(path, sizeof path, "%s/open-many.tmp", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fprintf(stderr, "open-many: cannot create %s: %s\n", path, strerror(errno));
        return 2;
    }
    close(fd);
    long n = 0;
    while (n < max) {
        if (open(path, O_RDONLY) < 0) {
            printf("open failed after %ld: %s\n", n, strerror(errno));
            fflush(stdout);
            return 0;
        }
        n++;
        if (n % 100 == 0) {
            printf("opened %ld\n", n);
            fflush(stdout);
        }
    }
    printf("opened all %ld\n", n);
    return 0;
}
