/// The parsed flags of `caisson start`, whichever parser produced them.
struct StartArguments: Equatable {
    var rw = false
    var root = false
    var mountHome: Bool?
    var mounts: [String] = []
    var env: [String] = []
    var workdir: String?
    var entrypoint = false
    var keepFD: [Int32] = []
    /// Where the squashfs image starts in the file (a bundle appends its image to a script).
    var imageOffset: UInt64?
    var park = false
    var rootfs = ""
    var command: [String] = []

    /// Parses a well-formed `start` command line without ArgumentParser, whose reflection costs
    /// about 2 ms per start in a static binary (measured; see bench/README.md) — paid by every
    /// task of every job step. Returns nil for anything unusual (help, an unknown or malformed
    /// option, a missing ROOTFS): ArgumentParser then handles it, with its messages and help.
    static func parseFast(_ args: ArraySlice<String>) -> StartArguments? {
        var result = StartArguments()
        var rest = args
        func value(_ inline: String?) -> String? {
            if let inline { return inline }
            return rest.popFirst()
        }
        while let arg = rest.popFirst() {
            if !arg.hasPrefix("-") || arg == "-" {
                result.rootfs = arg
                result.command = Array(rest)
                if result.command.first == "--" { result.command.removeFirst() }
                return result
            }
            var name = arg
            var inline: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                name = String(arg[..<eq])
                inline = String(arg[arg.index(after: eq)...])
            } else if !arg.hasPrefix("--"), arg.count > 2 {
                return nil  // joined short options (-eX=1) are ArgumentParser's to reject
            }
            switch name {
            case "--rw": guard inline == nil else { return nil }; result.rw = true
            case "--root": guard inline == nil else { return nil }; result.root = true
            case "--entrypoint": guard inline == nil else { return nil }; result.entrypoint = true
            case "--park": guard inline == nil else { return nil }; result.park = true
            case "--mount-home": guard inline == nil else { return nil }; result.mountHome = true
            case "--no-mount-home": guard inline == nil else { return nil }; result.mountHome = false
            case "-m", "--mount": guard let v = value(inline) else { return nil }; result.mounts.append(v)
            case "-e", "--env": guard let v = value(inline) else { return nil }; result.env.append(v)
            case "-w", "--workdir": guard let v = value(inline) else { return nil }; result.workdir = v
            case "--keep-fd": guard let v = value(inline), let fd = Int32(v) else { return nil }; result.keepFD.append(fd)
            case "--image-offset": guard let v = value(inline), let n = UInt64(v) else { return nil }; result.imageOffset = n
            default: return nil
            }
        }
        return nil
    }
}
