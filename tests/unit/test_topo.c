/* test_topo.c - hwloc discovery, shown fake machines (the XML files in
 * tests/fixtures/, described in tests/fixtures/README, and synthetic
 * descriptions) and then this machine, and the summary written for
 * tally-info.  Each test runs in its own process (Check's fork mode), so
 * the hwloc variables it sets and tally_topo_get's one discovery stay there. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <check.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topo/topo.h"

#define FIXTURE(name) TALLY_SOURCE_DIR "/tests/fixtures/" name

/* Shows hwloc one input (NULL, NULL: this machine), nothing else. */
static void use_input(const char *xmlfile, const char *synthetic)
{
    unsetenv("HWLOC_XMLFILE");
    unsetenv("HWLOC_SYNTHETIC");
    unsetenv("HWLOC_COMPONENTS");
    unsetenv("HWLOC_THISSYSTEM");
    unsetenv("HWLOC_FSROOT");
    if (xmlfile)
        ck_assert_int_eq(setenv("HWLOC_XMLFILE", xmlfile, 1), 0);
    if (synthetic)
        ck_assert_int_eq(setenv("HWLOC_SYNTHETIC", synthetic, 1), 0);
}

/* tally_topo_write's output; free() it. */
static char *summary(const tally_topo_t *topo)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    tally_topo_write(topo, f);
    ck_assert_int_eq(fclose(f), 0);
    return text;
}

/* Asserts that `line` (with its newline) is one of the summary's lines. */
static void assert_line(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\n%s\n", line);
    char have[4096];
    snprintf(have, sizeof have, "\n%s", text); /* the first line too */
    ck_assert_msg(strstr(have, want) != NULL, "summary lacks the line\n  %s\nit is:\n%s",
                  line, text);
}

static void assert_device(const tally_topo_t *topo, int i, tally_topo_device_kind_t kind,
                          const char *name, int package, int numa)
{
    ck_assert_int_lt(i, topo->ndevices);
    ck_assert_int_eq(topo->devices[i].kind, kind);
    ck_assert_str_eq(topo->devices[i].name, name);
    ck_assert_int_eq(topo->devices[i].package, package);
    ck_assert_int_eq(topo->devices[i].numa, numa);
}

START_TEST(test_xml_two_packages_gpus_nics)
{
    use_input(FIXTURE("2pkg-gpu-nic.xml"), NULL);
    tally_topo_t topo;
    tally_topo_discover(&topo);
    ck_assert_msg(topo.valid, "%s", topo.error);
    ck_assert(!topo.this_system);
    ck_assert_int_eq(topo.packages, 2);
    ck_assert_int_eq(topo.numa_nodes, 2);
    ck_assert_int_eq(topo.cores, 8);
    ck_assert_int_eq(topo.pus, 16);
    ck_assert_int_eq(topo.cache_count[0], 8);
    ck_assert_uint_eq(topo.cache_bytes[0], 32 * 1024);
    ck_assert_int_eq(topo.cache_count[1], 8);
    ck_assert_uint_eq(topo.cache_bytes[1], 1024 * 1024);
    ck_assert_int_eq(topo.cache_count[2], 2);
    ck_assert_uint_eq(topo.cache_bytes[2], 32 * 1024 * 1024);
    /* One device per PCI function although each has two OS devices; named
     * after the CUDA / OpenFabrics one, which the XML lists second. */
    ck_assert_int_eq(topo.ngpus, 2);
    ck_assert_int_eq(topo.nnics, 2);
    ck_assert_int_eq(topo.ndevices, 4);
    assert_device(&topo, 0, TALLY_TOPO_GPU, "cuda0", 0, 0);
    assert_device(&topo, 1, TALLY_TOPO_NIC, "mlx5_0", 0, 0);
    assert_device(&topo, 2, TALLY_TOPO_GPU, "cuda1", 1, 1);
    assert_device(&topo, 3, TALLY_TOPO_NIC, "mlx5_1", 1, 1);
    /* A fake machine has no binding to tell. */
    ck_assert(!topo.binding_known);
    ck_assert_int_eq(topo.bound_package, -1);

    char *text = summary(&topo);
    char want[512];
    snprintf(want, sizeof want,
             "topology: 2 packages, 2 NUMA nodes, 8 cores, 16 PUs (from HWLOC_XMLFILE=%s)",
             FIXTURE("2pkg-gpu-nic.xml"));
    ck_assert_msg(strncmp(text, want, strlen(want)) == 0, "first line is not\n  %s\n%s", want,
                  text);
    assert_line(text, "caches: L1d 32 KiB x8, L2 1 MiB x8, L3 32 MiB x2");
    assert_line(text, "gpus: cuda0 (package 0), cuda1 (package 1)");
    assert_line(text, "nics: mlx5_0 (package 0), mlx5_1 (package 1)");
    assert_line(text, "binding: unknown (not this system)");
    free(text);
}
END_TEST

START_TEST(test_xml_devices_on_machine)
{
    use_input(FIXTURE("2pkg-machine-io.xml"), NULL);
    tally_topo_t topo;
    tally_topo_discover(&topo);
    ck_assert_msg(topo.valid, "%s", topo.error);
    ck_assert_int_eq(topo.packages, 2);
    ck_assert_int_eq(topo.ngpus, 1);
    ck_assert_int_eq(topo.nnics, 1);
    ck_assert_int_eq(topo.ndevices, 2);
    /* Attached to the whole machine: no one package or NUMA node is nearer. */
    assert_device(&topo, 0, TALLY_TOPO_GPU, "cuda0", -1, -1);
    assert_device(&topo, 1, TALLY_TOPO_NIC, "mlx5_0", -1, -1);
    char *text = summary(&topo);
    assert_line(text, "gpus: cuda0 (no single package)");
    assert_line(text, "nics: mlx5_0 (no single package)");
    free(text);
}
END_TEST

START_TEST(test_xml_more_devices_than_listed)
{
    use_input(FIXTURE("many-devices.xml"), NULL);
    tally_topo_t topo;
    tally_topo_discover(&topo);
    ck_assert_msg(topo.valid, "%s", topo.error);
    ck_assert_int_eq(topo.packages, 1);
    ck_assert_int_eq(topo.numa_nodes, 1);
    ck_assert_int_eq(topo.pus, 2);
    /* All counted, the first TALLY_TOPO_MAX_DEVICES listed in hwloc's order. */
    ck_assert_int_eq(topo.ngpus, 36);
    ck_assert_int_eq(topo.nnics, 2);
    ck_assert_int_eq(topo.ndevices, TALLY_TOPO_MAX_DEVICES);
    for (int i = 0; i < TALLY_TOPO_MAX_DEVICES; i++) {
        char name[16];
        snprintf(name, sizeof name, "cuda%d", i);
        /* One package, one NUMA node: both are the nearest. */
        assert_device(&topo, i, TALLY_TOPO_GPU, name, 0, 0);
    }
    char *text = summary(&topo);
    ck_assert_ptr_nonnull(strstr(text, ", cuda31 (package 0), 4 more not listed\n"));
    assert_line(text, "nics: 2 more not listed");
    assert_line(text, "caches: none");
    free(text);
}
END_TEST

START_TEST(test_synthetic_plain)
{
    use_input(NULL, "pack:2 core:4 pu:1");
    tally_topo_t topo;
    tally_topo_discover(&topo);
    ck_assert_msg(topo.valid, "%s", topo.error);
    ck_assert(!topo.this_system);
    ck_assert_int_eq(topo.packages, 2);
    ck_assert_int_eq(topo.cores, 8);
    ck_assert_int_eq(topo.pus, 8);
    ck_assert_int_eq(topo.numa_nodes, 1); /* hwloc always has one */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(topo.cache_count[i], 0);
    ck_assert_int_eq(topo.ndevices, 0);
    ck_assert_int_eq(topo.ngpus, 0);
    ck_assert_int_eq(topo.nnics, 0);
    ck_assert(!topo.binding_known);
    char *text = summary(&topo);
    assert_line(text,
                "topology: 2 packages, 1 NUMA node, 8 cores, 8 PUs (synthetic: pack:2 core:4 pu:1)");
    assert_line(text, "caches: none");
    assert_line(text, "gpus: none");
    assert_line(text, "nics: none");
    assert_line(text, "binding: unknown (not this system)");
    free(text);
}
END_TEST

START_TEST(test_synthetic_caches_numa)
{
    const char *desc = "pack:2 numa:1 l3:1(size=16MiB) l2:4(size=2MiB) l1d:1(size=48KiB) "
                       "core:1 pu:2";
    use_input(NULL, desc);
    tally_topo_t topo;
    tally_topo_discover(&topo);
    ck_assert_msg(topo.valid, "%s", topo.error);
    ck_assert_int_eq(topo.packages, 2);
    ck_assert_int_eq(topo.numa_nodes, 2);
    ck_assert_int_eq(topo.cores, 8);
    ck_assert_int_eq(topo.pus, 16);
    ck_assert_int_eq(topo.cache_count[0], 8);
    ck_assert_uint_eq(topo.cache_bytes[0], 48 * 1024);
    ck_assert_int_eq(topo.cache_count[1], 8);
    ck_assert_uint_eq(topo.cache_bytes[1], 2 * 1024 * 1024);
    ck_assert_int_eq(topo.cache_count[2], 2);
    ck_assert_uint_eq(topo.cache_bytes[2], 16 * 1024 * 1024);
    char *text = summary(&topo);
    assert_line(text, "caches: L1d 48 KiB x8, L2 2 MiB x8, L3 16 MiB x2");
    free(text);
}
END_TEST

/* hwloc 2.9 does not fail on an unreadable HWLOC_XMLFILE: it warns and
 * discovers this machine instead.  The summary must not claim the file. */
START_TEST(test_missing_xml_falls_back)
{
    const char *path = FIXTURE("no-such-file.xml");
    use_input(path, NULL);
    tally_topo_t topo;
    tally_topo_discover(&topo);
    ck_assert_msg(topo.valid, "%s", topo.error);
    ck_assert(topo.this_system);
    ck_assert_int_ge(topo.pus, 1);
    char *text = summary(&topo);
    char want[512];
    snprintf(want, sizeof want, "(this system, though HWLOC_XMLFILE=%s is set)\n", path);
    ck_assert_msg(strstr(text, want) != NULL, "no\n  %s\nin\n%s", want, text);
    ck_assert_ptr_null(strstr(text, "(from HWLOC_XMLFILE"));
    free(text);
}
END_TEST

/* HWLOC_COMPONENTS=stop leaves hwloc no discovery component: load fails. */
START_TEST(test_load_failure)
{
    use_input(NULL, NULL);
    ck_assert_int_eq(setenv("HWLOC_COMPONENTS", "stop", 1), 0);
    tally_topo_t topo;
    memset(&topo, 0x5a, sizeof topo); /* everything must be set */
    tally_topo_discover(&topo);
    ck_assert(!topo.valid);
    ck_assert_msg(strncmp(topo.error, "hwloc_topology_load failed: ", 28) == 0, "error: %s",
                  topo.error);
    ck_assert_int_eq(topo.packages + topo.numa_nodes + topo.cores + topo.pus, 0);
    ck_assert_int_eq(topo.ndevices + topo.ngpus + topo.nnics, 0);
    ck_assert(!topo.this_system);
    ck_assert(!topo.binding_known);
    ck_assert_int_eq(topo.bound_package, -1);
    char *text = summary(&topo);
    char want[256];
    snprintf(want, sizeof want, "topology: unknown (%s)\n", topo.error);
    ck_assert_str_eq(text, want);
    free(text);
}
END_TEST

START_TEST(test_this_system)
{
    use_input(NULL, NULL);
    cpu_set_t mask;
    ck_assert_int_eq(sched_getaffinity(0, sizeof mask, &mask), 0);
    tally_topo_t topo;
    tally_topo_discover(&topo);
    ck_assert_msg(topo.valid, "%s", topo.error);
    ck_assert(topo.this_system);
    ck_assert_int_ge(topo.packages, 1);
    ck_assert_int_ge(topo.numa_nodes, 1);
    ck_assert_int_ge(topo.pus, 1);
    ck_assert_int_le(topo.cores, topo.pus);
    ck_assert_int_le(topo.ndevices, TALLY_TOPO_MAX_DEVICES);
    ck_assert_int_le(topo.ndevices, topo.ngpus + topo.nnics);
    for (int i = 0; i < topo.ndevices; i++) {
        ck_assert(topo.devices[i].name[0] != '\0');
        ck_assert_int_lt(topo.devices[i].package, topo.packages);
        ck_assert_int_lt(topo.devices[i].numa, topo.numa_nodes);
    }
    /* The binding is what the kernel says (one thread, so no union). */
    ck_assert(topo.binding_known);
    ck_assert_int_eq(topo.bound_pus, CPU_COUNT(&mask));
    ck_assert_int_le(topo.bound_pus, topo.pus);
    ck_assert(topo.binding[0] != '\0');
    if (topo.packages == 1)
        ck_assert_int_eq(topo.bound_package, 0);
    char *text = summary(&topo);
    ck_assert_ptr_nonnull(strstr(text, " (this system)\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nbinding: PUs "));
    fputs(text, stdout); /* what this machine looks like, for the log */
    free(text);
}
END_TEST

/* Bound to one PU, the binding is that PU, in that PU's package. */
START_TEST(test_this_system_bound_to_one_pu)
{
    use_input(NULL, NULL);
    cpu_set_t mask;
    ck_assert_int_eq(sched_getaffinity(0, sizeof mask, &mask), 0);
    int cpu = -1;
    for (int i = 0; i < CPU_SETSIZE; i++) /* the last allowed one: not always 0 */
        if (CPU_ISSET(i, &mask))
            cpu = i;
    ck_assert_int_ge(cpu, 0);
    CPU_ZERO(&mask);
    CPU_SET(cpu, &mask);
    ck_assert_int_eq(sched_setaffinity(0, sizeof mask, &mask), 0);

    tally_topo_t topo;
    tally_topo_discover(&topo);
    ck_assert_msg(topo.valid, "%s", topo.error);
    ck_assert(topo.binding_known);
    ck_assert_int_eq(topo.bound_pus, 1);
    char list[16];
    snprintf(list, sizeof list, "%d", cpu);
    ck_assert_str_eq(topo.binding, list);
    ck_assert_int_ge(topo.bound_package, 0); /* one PU lies in one package */
    ck_assert_int_lt(topo.bound_package, topo.packages);
    char *text = summary(&topo);
    char want[128];
    snprintf(want, sizeof want, "binding: PUs %d (1 PU, package %d)", cpu, topo.bound_package);
    assert_line(text, want);
    free(text);
}
END_TEST

START_TEST(test_get_discovers_once)
{
    use_input(FIXTURE("2pkg-gpu-nic.xml"), NULL);
    const tally_topo_t *first = tally_topo_get();
    ck_assert_ptr_nonnull(first);
    ck_assert_msg(first->valid, "%s", first->error);
    ck_assert_int_eq(first->pus, 16);
    /* Another input now changes nothing: discovery happened once. */
    use_input(NULL, "pack:1 core:1 pu:1");
    const tally_topo_t *second = tally_topo_get();
    ck_assert_ptr_eq(first, second);
    ck_assert_int_eq(second->pus, 16);
    ck_assert_int_eq(second->ngpus, 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("topo");
    TCase *tc = tcase_create("topo");
    tcase_set_timeout(tc, 60); /* I/O discovery may load GPU plugins */
    tcase_add_test(tc, test_xml_two_packages_gpus_nics);
    tcase_add_test(tc, test_xml_devices_on_machine);
    tcase_add_test(tc, test_xml_more_devices_than_listed);
    tcase_add_test(tc, test_synthetic_plain);
    tcase_add_test(tc, test_synthetic_caches_numa);
    tcase_add_test(tc, test_missing_xml_falls_back);
    tcase_add_test(tc, test_load_failure);
    tcase_add_test(tc, test_this_system);
    tcase_add_test(tc, test_this_system_bound_to_one_pu);
    tcase_add_test(tc, test_get_discovers_once);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK); /* each test's environment stays its own */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
