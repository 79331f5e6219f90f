/* MPI_Bcast latency and correctness check for Caisson's cluster tests.
 *
 *     mpi-bcast [-b] [ITERATIONS [WARMUP]]   (defaults: 1000 timed iterations after 100 warm-up)
 *
 * For each message size (1 B, 64 B, 1 KiB, 4 KiB, 16 KiB) rank 0 broadcasts ITERATIONS+WARMUP
 * messages. Timing follows OSU's osu_bcast without its barrier: every rank times each MPI_Bcast
 * call alone (buffer filling and checking stay outside the timed region), averages over the
 * timed iterations, and the maximum of the per-rank averages over all ranks is reported.
 * Without a barrier, consecutive small broadcasts overlap (rank 0 returns as soon as its eager
 * sends are queued), so small sizes show throughput-like numbers; -b adds OSU's MPI_Barrier after
 * every iteration (outside the timed region) for the one-message latency.
 * Every rank checks every received buffer against a pattern that depends on the iteration and
 * the size, so a wrong, stale or partial delivery is caught.
 *
 * Output (rank 0), one line per size and a summary:
 *     bcast SIZE LAT_US
 *     bcast ok ranks=N hosts=H          (H: distinct MPI_Get_processor_name values)
 * Any mismatch prints `bcast FAILED ...` lines on stderr and exits with status 1.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int sizes[] = {1, 64, 1024, 4096, 16384};
#define NSIZES ((int)(sizeof(sizes) / sizeof(sizes[0])))
#define MAX_SIZE 16384

static inline uint8_t pattern(long iteration, int size, int j)
{
    uint32_t x = (uint32_t)iteration * 2654435761u ^ (uint32_t)size * 40503u ^ (uint32_t)j * 2246822519u;
    x ^= x >> 15;
    return (uint8_t)(x ^ (x >> 8) ^ (uint32_t)j);
}

static long parse(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 100000000) {
        fprintf(stderr, "mpi-bcast: bad %s: %s\nusage: mpi-bcast [-b] [ITERATIONS [WARMUP]]\n", what, s);
        exit(2);
    }
    return v;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

int main(int argc, char **argv)
{
    int barrier = argc > 1 && strcmp(argv[1], "-b") == 0;
    char **args = argv + barrier;
    int nargs = argc - barrier;
    long iterations = nargs > 1 ? parse(args[1], "iteration count") : 1000;
    long warmup = nargs > 2 ? parse(args[2], "warm-up count") : 100;
    if (iterations < 1)
        iterations = 1;

    MPI_Init(&argc, &argv);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);

    uint8_t *buffer = malloc(MAX_SIZE);
    if (!buffer) {
        fprintf(stderr, "mpi-bcast: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }

    long mismatches = 0; /* iterations with a wrong buffer, this rank */
    for (int s = 0; s < NSIZES; s++) {
        int size = sizes[s];
        double total = 0;
        long bad = 0;
        MPI_Barrier(MPI_COMM_WORLD);
        for (long i = 0; i < warmup + iterations; i++) {
            if (rank == 0)
                for (int j = 0; j < size; j++)
                    buffer[j] = pattern(i, size, j);
            else
                memset(buffer, (int)(uint8_t)~pattern(i, size, 0), size); /* never the expected contents */
            double start = MPI_Wtime();
            MPI_Bcast(buffer, size, MPI_BYTE, 0, MPI_COMM_WORLD);
            double stop = MPI_Wtime();
            if (i >= warmup)
                total += stop - start;
            for (int j = 0; j < size; j++) {
                if (buffer[j] != pattern(i, size, j)) {
                    if (bad < 3)
                        fprintf(stderr, "bcast FAILED rank %d size %d iteration %ld byte %d: got 0x%02x, expected 0x%02x\n",
                                rank, size, i, j, buffer[j], pattern(i, size, j));
                    bad++;
                    break;
                }
            }
            if (barrier)
                MPI_Barrier(MPI_COMM_WORLD);
        }
        mismatches += bad;
        double mine = total * 1e6 / (double)iterations, slowest = 0;
        MPI_Reduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        if (rank == 0) {
            printf("bcast %d %.2f\n", size, slowest);
            fflush(stdout);
        }
    }

    long all_mismatches = 0;
    MPI_Allreduce(&mismatches, &all_mismatches, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);

    char name[MPI_MAX_PROCESSOR_NAME];
    memset(name, 0, sizeof(name));
    int length = 0;
    MPI_Get_processor_name(name, &length);
    char *names = rank == 0 ? calloc((size_t)ranks, MPI_MAX_PROCESSOR_NAME) : NULL;
    MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, MPI_COMM_WORLD);

    int status = 0;
    if (rank == 0) {
        qsort(names, (size_t)ranks, MPI_MAX_PROCESSOR_NAME, compare_names);
        int hosts = 0;
        for (int r = 0; r < ranks; r++)
            if (r == 0 || strcmp(names + (size_t)r * MPI_MAX_PROCESSOR_NAME, names + (size_t)(r - 1) * MPI_MAX_PROCESSOR_NAME) != 0)
                hosts++;
        if (all_mismatches) {
            fprintf(stderr, "bcast FAILED: %ld iteration(s) delivered wrong contents (ranks=%d hosts=%d)\n",
                    all_mismatches, ranks, hosts);
            status = 1;
        } else {
            printf("bcast ok ranks=%d hosts=%d\n", ranks, hosts);
        }
        fflush(stdout);
        free(names);
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    free(buffer);
    MPI_Finalize();
    return status;
}
