import ArgumentParser
import CaissonConfig
import CaissonStore
import CaissonSystem

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List your named containers.",
        discussion: """
        Prints one name per line: the containers made by `caisson create` under \
        CAISSON_DATA_PATH. With --fancy, a table adds the size on disk, the image the container \
        came from (its /etc/caisson/image.json) and the PIDs of `caisson start NAME` processes \
        still running (their children are not listed).
        """
    )

    @Flag(name: [.short, .long], help: "Show size, image and running processes.")
    var fancy = false

    func run() throws {
        let store = ContainerStore(configuration: Configuration.load())
        store.collectLeftovers()
        let names = store.names()
        guard fancy else {
            for name in names { print(name) }
            return
        }
        var rows = [["NAME", "SIZE", "IMAGE", "PIDS"]]
        for name in names {
            let details = store.details(of: name)
            rows.append([name, ByteCount.text(Int64(details.bytes)), details.source ?? "-",
                         details.pids.isEmpty ? "-" : details.pids.map(String.init).joined(separator: ",")])
        }
        let widths = (0..<4).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let cells = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }
            print(cells.joined(separator: "  "))
        }
    }
}
