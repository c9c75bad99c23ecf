/* exit-code: exits with the integer in argv[1] (default 0). Prints nothing. */
#include <stdlib.h>

int main(int argc, char **argv) {
    int code = argc > 1 ? atoi(argv[1]) : 0;
    exit(code);
}
