// A consumer of cz/tar alone: writes an archive in memory and reads it back through a reader
// that is moved between entries. Built and linked with cz-tar's flags only (fmt).
#include <cz/tar.hpp>

#include <cstdio>
#include <string>
#include <utility>

int main() {
    cz::byte_buffer archive;
    cz::buffer_sink sink(archive);
    cz::tar::writer w(sink, {.deterministic = true});
    for (const char* name : {"a", "b"}) {
        cz::tar::entry e;
        e.name = name;
        e.size = 2;
        e.mode = 0644;
        w.add(e);
        w.write(cz::as_bytes(std::string(name) + "\n"));
    }
    w.finish();

    cz::memory_source src(archive);
    cz::tar::reader first(src);
    std::string names;
    if (const auto* e = first.next()) names += e->name;
    cz::tar::reader moved(std::move(first));
    while (const auto* e = moved.next())
        names += e->name;
    std::printf("%s\n", names.c_str());
    return names == "ab" ? 0 : 1;
}
