import Foundation
import Support
import TestSupport
import Testing

@Suite struct FilesTests {
    let dir = Scratch.directory("files")

    @Test func readErrorsSayWhatIsWrong() throws {
        let file = dir.appendingPathComponent("a.txt")
        try AtomicFile.write(Data("text".utf8), to: file)
        #expect(try Files.text(file) == "text")
        #expect { try Files.data(dir) } throws: { $0.localizedDescription == "it is a directory, not a file" }
        #expect { try Files.data(dir.appendingPathComponent("missing")) } throws: { $0.localizedDescription == "no such file" }
        let binary = dir.appendingPathComponent("b.bin")
        try AtomicFile.write(Data([0xff, 0xfe, 0x00]), to: binary)
        #expect { try Files.text(binary) } throws: { $0.localizedDescription == "it is not UTF-8 text" }
    }

    @Test func makeDirectoryNamesAFileInTheWay() throws {
        let nested = dir.appendingPathComponent("x/y/z")
        try Files.makeDirectory(nested)
        try Files.makeDirectory(nested)  // an existing folder is fine
        let file = dir.appendingPathComponent("plain")
        try AtomicFile.write(Data(), to: file)
        #expect { try Files.makeDirectory(file.appendingPathComponent("run/checkpoints")) } throws: {
            "\($0)".contains("\(file.path) is a file, not a folder")
        }
    }
}
