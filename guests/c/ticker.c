/* ticker: a long-running task for daemon tests. Prints "tick N" on stdout (and "tock N" on
 * stderr every tenth tick) every INTERVAL_MS milliseconds, COUNT times (0 = forever), then exits
 * with STATUS.   usage: ticker [COUNT [INTERVAL_MS [STATUS]]]   defaults: 0 50 0 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 0;
    long interval_ms = argc > 2 ? atol(argv[2]) : 50;
    int status = argc > 3 ? atoi(argv[3]) : 0;
    struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
    for (long i = 1; count == 0 || i <= count; i++) {
        printf("tick %ld\n", i);
        fflush(stdout);
        if (i % 10 == 0) {
            fprintf(stderr, "tock %ld\n", i);
        }
        if (interval_ms > 0) nanosleep(&ts, NULL);
    }
    return status;
}
