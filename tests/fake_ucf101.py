"""Writes a fake UCF101 tree for loader tests: real naming and split-list formats, empty videos.

Like the real dataset: `UCF-101/<Class>/v_<Class>_gGG_cCC.avi`, 25 groups per class,
`ucfTrainTestlist/classInd.txt`, `trainlist0K.txt` (path and 1-based class number) and
`testlist0K.txt` (path only), CRLF line endings, split K testing on groups 7K-6..7K.
Casing quirks: HandstandPushups files are named v_HandStandPushups_* on disk and in
the lists, as in the real dataset; two more classes exaggerate the quirk (folder
casing differs from classInd, file casing differs between lists and disk) so that
every kind of case-insensitive match is exercised. Loaders don't decode, so the
video files hold `video_bytes` (empty by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class FakeClass:
    """How one class is spelled in classInd, on disk, and inside the split lists."""

    name: str                  # classInd.txt and the folder part of list entries
    disk_folder: str = ""      # folder name on disk (default: name)
    disk_file_class: str = ""  # the <Class> in v_<Class>_g.. on disk (default: name)
    list_file_class: str = ""  # the <Class> in v_<Class>_g.. in the lists (default: disk_file_class)

    @property
    def folder(self) -> str:
        return self.disk_folder or self.name

    @property
    def file_class(self) -> str:
        return self.disk_file_class or self.name

    @property
    def listed_file_class(self) -> str:
        return self.list_file_class or self.file_class


DEFAULT_CLASSES = (
    FakeClass("ApplyEyeMakeup"),
    FakeClass("Basketball"),
    FakeClass("CricketShot"),
    FakeClass("HandstandPushups", disk_file_class="HandStandPushups"),  # the real quirk
    FakeClass("HandstandWalking"),
    FakeClass("SkyDiving", disk_file_class="Skydiving", list_file_class="SkyDiving"),
    FakeClass("YoYo", disk_folder="Yoyo"),
)


@dataclass
class FakeUCF101:
    """Where the fake tree lies and what a correct loader must report for each video."""

    root: Path
    videos_dir: Path
    splits_dir: Path
    class_names: list[str]
    label_of: dict[str, int] = field(default_factory=dict)  # absolute video path -> 0-based label
    group_of: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (label, group number)


def clips_in_group(class_index: int, group: int) -> int:
    """2 to 4 clips per group, varying like the real dataset's 4 to 7."""
    return 2 + (class_index + group) % 3


def official_test_groups(split: int) -> range:
    """Groups that official split `split` tests on: 7k-6 .. 7k."""
    return range(7 * split - 6, 7 * split + 1)


def write_fake_ucf101(
    root: str | Path,
    classes: tuple[FakeClass, ...] = DEFAULT_CLASSES,
    groups_per_class: int = 25,
    splits: tuple[int, ...] = (1, 2, 3),
    video_bytes: bytes = b"",
    videos_dir_name: str = "UCF-101",
) -> FakeUCF101:
    """Write UCF-101/ and ucfTrainTestlist/ side by side under `root`; return what was written."""
    root = Path(root)
    videos_dir = root / videos_dir_name
    splits_dir = root / "ucfTrainTestlist"
    splits_dir.mkdir(parents=True, exist_ok=True)
    fake = FakeUCF101(root, videos_dir, splits_dir, [c.name for c in classes])

    listed: list[tuple[FakeClass, int, int, int]] = []  # (class, label, group, clip)
    for label, cls in enumerate(classes):
        folder = videos_dir / cls.folder
        folder.mkdir(parents=True, exist_ok=True)
        for group in range(1, groups_per_class + 1):
            for clip in range(1, clips_in_group(label, group) + 1):
                path = folder / f"v_{cls.file_class}_g{group:02d}_c{clip:02d}.avi"
                path.write_bytes(video_bytes)
                fake.label_of[str(path.absolute())] = label
                fake.group_of[str(path.absolute())] = (label, group)
                listed.append((cls, label, group, clip))

    def write_lines(name: str, lines: list[str]) -> None:
        # The official lists use Windows line endings.
        (splits_dir / name).write_bytes("".join(line + "\r\n" for line in lines).encode())

    write_lines("classInd.txt", [f"{label + 1} {cls.name}" for label, cls in enumerate(classes)])
    for split in splits:
        held = set(official_test_groups(split))
        train, test = [], []
        for cls, label, group, clip in listed:
            entry = f"{cls.name}/v_{cls.listed_file_class}_g{group:02d}_c{clip:02d}.avi"
            (test if group in held else train).append(entry if group in held else f"{entry} {label + 1}")
        write_lines(f"trainlist{split:02d}.txt", train)
        write_lines(f"testlist{split:02d}.txt", test)
    return fake
