import CaissonSlurm
import Testing

@Suite struct EnvironmentRulesTests {
    @Test func caissonGetsTheJobsEnvironmentSanitised() {
        let job: [(name: String, value: String)] = [
            ("HOME", "/home/u"), ("PATH", "/home/u/bin:/usr/bin"), ("LD_PRELOAD", "/x.so"), ("LD_LIBRARY_PATH", "/l"),
            ("GCONV_PATH", "/g"), ("CAISSON_DATA_PATH", "/d"), ("CAISSON_CACHE_PATH", "/c"), ("CAISSON_CONFIG_PATH", "/cfg"),
            ("CAISSON_INSECURE_REGISTRIES", "r:5000"), ("CAISSON_CONTAINER_IMAGE", "i"), ("PYXIS_CONTAINER_IMAGE", "i"),
            ("SLURM_JOB_ID", "4"), ("HOME", "/duplicate"), ("TMPDIR", "/scratch"),
        ]
        let env = EnvironmentRules.forCaisson(job: job, allowedPaths: ["CAISSON_CONFIG_PATH", "CAISSON_CACHE_PATH"],
                                              overrides: [("PATH", "/usr/bin:/bin"), ("CAISSON_RUNTIME_PATH", "/run/caisson/7")])
        #expect(env == ["HOME=/home/u", "CAISSON_CACHE_PATH=/c", "CAISSON_CONFIG_PATH=/cfg", "CAISSON_INSECURE_REGISTRIES=r:5000",
                        "SLURM_JOB_ID=4", "TMPDIR=/scratch", "PATH=/usr/bin:/bin", "CAISSON_RUNTIME_PATH=/run/caisson/7"])
    }

    @Test func tasksGetTheContainersEnvironmentButKeepSlurmsAndTheirOwnChoices() {
        let container: [(name: String, value: String)] = [
            ("PATH", "/usr/local/bin:/usr/bin"), ("GREETING", "image"), ("KEEP", "job"), ("SLURM_PROCID", "0"),
            ("PMIX_RANK", "0"), ("PMI_FD", "3"), ("LD_LIBRARY_PATH", "/image/lib"),
        ]
        let job: [(name: String, value: String)] = [
            ("PATH", "/host/bin"), ("GREETING", "job"), ("KEEP", "job"), ("SLURM_PROCID", "5"), ("LD_PRELOAD", "/x.so"),
            ("LD_LIBRARY_PATH", "/host/lib"), ("MODULEPATH", "/m"), ("CAISSON_DATA_PATH", "/d"), ("BASH_FUNC_f%%", "() { :; }"),
            ("LD_AUDIT", "/kept.so"),
        ]
        let update = EnvironmentRules.taskUpdate(container: container, job: job, keep: ["KEEP", "LD_AUDIT"])
        #expect(update.set.map(\.name) == ["PATH", "GREETING", "KEEP", "LD_LIBRARY_PATH"])
        #expect(update.set.map(\.overwrite) == [true, true, false, true])
        #expect(update.unset == ["LD_PRELOAD", "MODULEPATH", "CAISSON_DATA_PATH", "BASH_FUNC_f%%"])
    }

    @Test func nulSeparatedRecords() {
        let bytes = Array("A=1\0B=x=y\0=bad\0C=\0".utf8)
        let pairs = EnvironmentRules.parseNulSeparated(bytes)
        #expect(pairs.map(\.name) == ["A", "B", "C"])
        #expect(pairs.map(\.value) == ["1", "x=y", ""])
    }
}
