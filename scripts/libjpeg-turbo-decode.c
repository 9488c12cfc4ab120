/* libjpeg-turbo's decode time on one JPEG at 1/1, 1/2, 1/4 and 1/8 scale (ms per image,
 * 300 decodes each), to set beside `cargo bench --bench decoders` (README, "Data at
 * ImageNet scale"). Not part of any build:
 *
 *   gcc -O2 scripts/libjpeg-turbo-decode.c -o /tmp/tj -ljpeg && /tmp/tj photo.jpg
 *
 * (Debian: libjpeg62-turbo-dev.) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <jpeglib.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s FILE.jpg\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 2; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *bytes = malloc(n);
    if (fread(bytes, 1, n, f) != (size_t)n) { perror(argv[1]); return 2; }
    fclose(f);
    for (int den = 1; den <= 8; den *= 2) {
        struct timespec t0, t1;
        unsigned w = 0, h = 0;
        const int runs = 300;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < runs; i++) {
            struct jpeg_decompress_struct c;
            struct jpeg_error_mgr e;
            c.err = jpeg_std_error(&e);
            jpeg_create_decompress(&c);
            jpeg_mem_src(&c, bytes, n);
            jpeg_read_header(&c, 1);
            c.scale_num = 1;
            c.scale_denom = den;
            c.out_color_space = JCS_RGB;
            jpeg_start_decompress(&c);
            w = c.output_width;
            h = c.output_height;
            unsigned char *out = malloc((size_t)w * h * 3);
            while (c.output_scanline < c.output_height) {
                unsigned char *row = out + (size_t)c.output_scanline * w * 3;
                jpeg_read_scanlines(&c, &row, 1);
            }
            jpeg_finish_decompress(&c);
            jpeg_destroy_decompress(&c);
            free(out);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6) / runs;
        printf("libjpeg-turbo at 1/%d (%ux%u): %.3f ms\n", den, w, h, ms);
    }
    return 0;
}
