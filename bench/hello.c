/* bench/hello.c: the floor, the least any credential helper can do — read stdin, print
 * one line, exit — as a statically linked C program: the real process-start limit of
 * this machine. scripts/bench.sh builds it with `gcc -O2 -static`. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    char input[4096];
    ssize_t n = read(0, input, sizeof input - 1);
    if (n < 0) n = 0;
    while (n > 0 && (input[n - 1] == '\n' || input[n - 1] == ' ')) n--;
    input[n] = 0;
    printf("{\"ServerURL\":\"%s\",\"Username\":\"u\",\"Secret\":\"s\"}\n", input);
    return 0;
}
