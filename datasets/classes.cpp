#include "datasets/classes.h"

#include <algorithm>
#include <array>
#include <map>
#include <mutex>

#include "harness/core/errors.h"

namespace gb::datasets {
namespace {

// clang-format off
// ---- tables transcribed from the paper's caption_dataset.py / dataset.py / coco_macro.py -------------------
// (checked against the paper's own lists by tests/datasets/test_classes.cpp with the golden written by
// tools/parity/datasets_classes.py)
// voc: caption_dataset.py class_name, index = class id (21 classes)
const std::vector<std::vector<std::string>> kVocSynonyms = {
    {},  // 0
    {"aeroplane", "plane", "airplane", "airplanes", "jet", "jets", "airliner", "skyline", "planes"},  // 1
    {"bicycle", "bicycles", "bike", "bikes"},  // 2
    {"bird", "ostrich", "seagull", "pigeon", "owl", "penguin", "goose", "birds", "hawk", "cranes", "vulture", "heron", "duck", "dove", "puffins", "parrot", "parrots", "quail"},  // 3
    {"boat", "ship", "boats", "ships", "tugboat", "tugboats", "sailboat", "sailboats"},  // 4
    {"bottle", "bottles", "wine"},  // 5
    {"bus", "buses"},  // 6
    {"car", "cars", "vehicle", "suv", "truck", "trucks", "mustang", "sedan"},  // 7
    {"cat", "cats", "kitten"},  // 8
    {"chair", "chairs"},  // 9
    {"cow", "cows"},  // 10
    {"diningtable", "table", "tables"},  // 11
    {"dog", "dogs", "bulldog", "pug", "puppy"},  // 12
    {"horse", "horses"},  // 13
    {"motorbike", "motorbikes", "motorcycle", "motorcycles"},  // 14
    {"person", "man", "woman", "men", "women", "lady", "kid", "child", "children", "boy", "girl", "baby", "people", "woodpecker"},  // 15
    {"pottedplant", "plant", "plants"},  // 16
    {"sheep", "goat", "lamb"},  // 17
    {"sofa", "couch"},  // 18
    {"train", "trains"},  // 19
    {"tvmonitor", "tv", "tvs", "monitor", "monitors", "television"},  // 20
};
// context: caption_dataset.py class_name, index = class id (60 classes)
const std::vector<std::vector<std::string>> kContextSynonyms = {
    {},  // 0
    {"aeroplane"},  // 1
    {"mountain"},  // 2
    {"mouse"},  // 3
    {"track"},  // 4
    {"road"},  // 5
    {"bag"},  // 6
    {"motorbike"},  // 7
    {"fence"},  // 8
    {"bed"},  // 9
    {"bedclothes"},  // 10
    {"bench"},  // 11
    {"bicycle"},  // 12
    {"table"},  // 13
    {"bird"},  // 14
    {"person"},  // 15
    {"floor"},  // 16
    {"flower"},  // 17
    {"train"},  // 18
    {"book"},  // 19
    {"food"},  // 20
    {"tree"},  // 21
    {"window"},  // 22
    {"plate"},  // 23
    {"platform"},  // 24
    {"tvmonitor"},  // 25
    {"building"},  // 26
    {"bus"},  // 27
    {"cabinet"},  // 28
    {"pottedplant"},  // 29
    {"car"},  // 30
    {"wall"},  // 31
    {"water"},  // 32
    {"boat"},  // 33
    {"light"},  // 34
    {"cat"},  // 35
    {"sidewalk"},  // 36
    {"truck"},  // 37
    {"ceiling"},  // 38
    {"rock"},  // 39
    {"chair"},  // 40
    {"wood"},  // 41
    {"bottle"},  // 42
    {"horse"},  // 43
    {"cloth"},  // 44
    {"sign"},  // 45
    {"computer"},  // 46
    {"sheep"},  // 47
    {"keyboard"},  // 48
    {"shelves"},  // 49
    {"sky"},  // 50
    {"cow"},  // 51
    {"grass"},  // 52
    {"cup"},  // 53
    {"curtain"},  // 54
    {"snow"},  // 55
    {"ground"},  // 56
    {"sofa"},  // 57
    {"dog"},  // 58
    {"door"},  // 59
};
// coco-object: caption_dataset.py class_name, index = class id (81 classes)
const std::vector<std::vector<std::string>> kCocoSynonyms = {
    {},  // 0
    {"person", "persons"},  // 1
    {"bicycle", "bicycles"},  // 2
    {"car", "cars"},  // 3
    {"motorcycle", "motorcycles"},  // 4
    {"airplane", "airplanes"},  // 5
    {"bus", "buses"},  // 6
    {"train", "trains"},  // 7
    {"truck", "trucks"},  // 8
    {"boat", "boats"},  // 9
    {"traffic light", "traffic lights"},  // 10
    {"fire hydrant", "fire hydrants"},  // 11
    {"stop sign", "stop signs"},  // 12
    {"parking meter"},  // 13
    {"bench", "benches"},  // 14
    {"bird", "birds"},  // 15
    {"cat", "cats"},  // 16
    {"dog", "dogs"},  // 17
    {"horse", "horses"},  // 18
    {"sheep"},  // 19
    {"cow"},  // 20
    {"elephant", "elephants"},  // 21
    {"bear", "bears"},  // 22
    {"zebra", "zebras"},  // 23
    {"giraffe", "giraffes"},  // 24
    {"backpack"},  // 25
    {"umbrella"},  // 26
    {"handbag", "handbags"},  // 27
    {"tie", "ties"},  // 28
    {"suitcase", "suitcases"},  // 29
    {"frisbee"},  // 30
    {"skis"},  // 31
    {"snowboard", "snowboards"},  // 32
    {"sports ball", "sports balls", "ball", "balls"},  // 33
    {"kite", "kites"},  // 34
    {"baseball bat", "baseball bats"},  // 35
    {"baseball glove", "baseball gloves"},  // 36
    {"skateboard", "skateboards"},  // 37
    {"surfboard", "surfboards"},  // 38
    {"tennis racket", "tennis rackets"},  // 39
    {"bottle", "bottles"},  // 40
    {"wine glass"},  // 41
    {"cup", "cups"},  // 42
    {"fork", "forks"},  // 43
    {"knife", "knives"},  // 44
    {"spoon", "spoons"},  // 45
    {"bowl", "bowls"},  // 46
    {"banana", "bananas"},  // 47
    {"apple", "apples"},  // 48
    {"sandwich", "sandwiches"},  // 49
    {"orange", "oranges"},  // 50
    {"broccoli"},  // 51
    {"carrot", "carrots"},  // 52
    {"hot dog", "hot dogs"},  // 53
    {"pizza"},  // 54
    {"donut"},  // 55
    {"cake", "cakes"},  // 56
    {"chair", "chairs"},  // 57
    {"couch", "couches"},  // 58
    {"potted plant", "potted plants"},  // 59
    {"bed", "beds"},  // 60
    {"dining table", "dining tables"},  // 61
    {"toilet", "toilets"},  // 62
    {"tv"},  // 63
    {"laptop", "laptops"},  // 64
    {"mouse"},  // 65
    {"remote"},  // 66
    {"keyboard", "keyboards"},  // 67
    {"cell phone", "cell phones"},  // 68
    {"microwave"},  // 69
    {"oven", "ovens"},  // 70
    {"toaster"},  // 71
    {"sink"},  // 72
    {"refrigerator"},  // 73
    {"book", "books"},  // 74
    {"clock", "clocks"},  // 75
    {"vase"},  // 76
    {"scissors"},  // 77
    {"teddy bear", "teddy bears"},  // 78
    {"hair drier"},  // 79
    {"toothbrush"},  // 80
};
// cityscapes: caption_dataset.py class_name, index = class id (20 classes)
const std::vector<std::vector<std::string>> kCitySynonyms = {
    {},  // 0
    {"road", "roads"},  // 1
    {"sidewalk", "sidewalks"},  // 2
    {"building", "buildings"},  // 3
    {"wall", "walls"},  // 4
    {"fence", "fences"},  // 5
    {"pole", "poles"},  // 6
    {"traffic light", "traffic lights"},  // 7
    {"traffic sign", "traffic signs"},  // 8
    {"vegetation"},  // 9
    {"terrain"},  // 10
    {"sky"},  // 11
    {"pedestrian", "pedestrians"},  // 12
    {"rider", "riders"},  // 13
    {"car", "cars"},  // 14
    {"truck", "trucks"},  // 15
    {"bus", "buses"},  // 16
    {"train", "trains"},  // 17
    {"motorcycle", "motorcycles"},  // 18
    {"bicycle", "bicycles"},  // 19
};
// ade20k: caption_dataset.py class_name, index = class id (151 classes)
const std::vector<std::vector<std::string>> kAdeSynonyms = {
    {},  // 0
    {"wall", "walls"},  // 1
    {"building", "buildingsedifice"},  // 2
    {"sky"},  // 3
    {"floor", "flooring"},  // 4
    {"tree", "trees"},  // 5
    {"ceiling"},  // 6
    {"road", "roads", "route"},  // 7
    {"bed", "beds"},  // 8
    {"windowpane", "window", "windows"},  // 9
    {"grass"},  // 10
    {"cabinet", "cabinets"},  // 11
    {"sidewalk", "pavement"},  // 12
    {"person", "individual", "someone", "somebody", "mortal", "soul", "man", "woman", "men", "women"},  // 13
    {"earth", "ground"},  // 14
    {"door", "doors", "double door"},  // 15
    {"table", "tables"},  // 16
    {"mountain", "mount"},  // 17
    {"plant", "flora", "plant life"},  // 18
    {"curtain", "drape", "drapery", "mantle", "pall"},  // 19
    {"chair", "chairs"},  // 20
    {"car", "cars", "auto", "automobile", "machine", "motorcar"},  // 21
    {"water"},  // 22
    {"painting", "paintings", "picture"},  // 23
    {"sofa", "couch", "lounge"},  // 24
    {"shelf", "shelves"},  // 25
    {"house", "hourses"},  // 26
    {"sea"},  // 27
    {"mirror"},  // 28
    {"rug", "carpet", "carpeting"},  // 29
    {"field"},  // 30
    {"armchair", "armchairs"},  // 31
    {"seat", "seats"},  // 32
    {"fence", "fencing"},  // 33
    {"desk", "desks"},  // 34
    {"rock", "rocks", "stone", "stones"},  // 35
    {"wardrobe", "closet", "press"},  // 36
    {"lamp", "lamps"},  // 37
    {"bathtub", "bathing tub", "bath", "tub"},  // 38
    {"railing", "rail"},  // 39
    {"cushion"},  // 40
    {"base", "pedestal", "stand"},  // 41
    {"box", "boxes"},  // 42
    {"column", "columns", "pillar", "pillars"},  // 43
    {"signboard", "sign"},  // 44
    {"chest of drawers", "chest", "chests", "bureau", "dresser"},  // 45
    {"counter"},  // 46
    {"sand"},  // 47
    {"sink"},  // 48
    {"skyscraper", "skyscrapers"},  // 49
    {"fireplace", "hearth", "open fireplace"},  // 50
    {"refrigerator", "refrigerators", "icebox"},  // 51
    {"grandstand", "covered stand"},  // 52
    {"path"},  // 53
    {"stairs", "steps"},  // 54
    {"runway"},  // 55
    {"case", "cases", "display case", "showcase", "vitrine"},  // 56
    {"pool table", "pool tables", "billiard table", "billiard tables", "snooker table", "snooker tables"},  // 57
    {"pillow"},  // 58
    {"screen door", "screen", "screens"},  // 59
    {"stairway", "staircase"},  // 60
    {"river", "rivers"},  // 61
    {"bridge", "bridges", "span"},  // 62
    {"bookcase", "bookcases"},  // 63
    {"blind", "screen"},  // 64
    {"coffee table", "coffee tables", "cocktail table", "cocktail tables"},  // 65
    {"toilet", "can", "commode", "crapper", "pot", "pots", "potty", "stool", "throne"},  // 66
    {"flower", "flowers"},  // 67
    {"book", "books"},  // 68
    {"hill", "hills"},  // 69
    {"bench", "benches"},  // 70
    {"countertop"},  // 71
    {"stove", "stoves", "kitchen stove", "range", "kitchen range", "cooking stove"},  // 72
    {"palm", "palm tree", "palm trees"},  // 73
    {"kitchen island"},  // 74
    {"computer", "computers", "computing machine", "computing device", "data processor", "electronic computer", "information processing system"},  // 75
    {"swivel chair", "swivel chairs"},  // 76
    {"boat", "boats"},  // 77
    {"bar"},  // 78
    {"arcade machine"},  // 79
    {"hovel", "hut", "huts", "hutch", "shack", "shanty"},  // 80
    {"bus", "buses", "autobus", "coach", "coaches", "charabanc", "double-decker", "double-deckers", "jitney", "motorbus", "motorcoach", "omnibus", "passenger vehicle"},  // 81
    {"towel"},  // 82
    {"light", "lights", "light source"},  // 83
    {"truck", "trucks", "motortruck"},  // 84
    {"tower", "towers"},  // 85
    {"chandelier", "pendant", "pendent"},  // 86
    {"awning", "sunshade", "sunblind"},  // 87
    {"streetlight", "streetlights", "street lamp", "street lamps"},  // 88
    {"booth", "cubicle", "stall", "kiosk"},  // 89
    {"television receiver", "television", "television set", "tv", "tv set", "idiot box", "boob tube", "telly", "goggle box"},  // 90
    {"airplane", "airplanes", "aeroplane", "aeroplanes", "plane", "planes"},  // 91
    {"dirt track"},  // 92
    {"apparel", "wearing apparel", "dress", "clothes"},  // 93
    {"pole", "poles"},  // 94
    {"land", "ground", "soil"},  // 95
    {"bannister", "banister", "balustrade", "balusters", "handrail"},  // 96
    {"escalator", "escalators", "moving staircase", "moving stairway"},  // 97
    {"ottoman", "pouf", "pouffe", "puff", "hassock"},  // 98
    {"bottle", "bottles"},  // 99
    {"buffet", "counter", "sideboard"},  // 100
    {"poster", "posters", "posting", "placard", "notice", "bill", "card", "cards"},  // 101
    {"stage", "stages"},  // 102
    {"van"},  // 103
    {"ship", "ships"},  // 104
    {"fountain", "fountains"},  // 105
    {"conveyer belt", "conveyor belt", "conveyer", "conveyor", "transporter"},  // 106
    {"canopy"},  // 107
    {"washer", "automatic washer", "washing machine"},  // 108
    {"plaything", "toy", "toys"},  // 109
    {"swimming pool", "swimming pools", "swimming bath", "natatorium"},  // 110
    {"stool"},  // 111
    {"barrel", "cask"},  // 112
    {"basket", "baskets", "handbasket"},  // 113
    {"waterfall", "falls"},  // 114
    {"tent", "tents", "collapsible shelter"},  // 115
    {"bag", "bags"},  // 116
    {"minibike", "motorbike"},  // 117
    {"cradle", "cradles"},  // 118
    {"oven", "ovens"},  // 119
    {"ball", "balls"},  // 120
    {"food", "solid food"},  // 121
    {"step", "stair"},  // 122
    {"tank", "tanks", "storage tank"},  // 123
    {"trade name", "brand name", "brand", "marque"},  // 124
    {"microwave", "microwave oven", "microwave ovens"},  // 125
    {"pot", "flowerpot", "flowerpots"},  // 126
    {"animal", "animals", "animate being", "beast", "beasts", "brute", "creature", "fauna"},  // 127
    {"bicycle", "bicycles", "bike", "bikes", "wheel", "cycle"},  // 128
    {"lake", "lakes"},  // 129
    {"dishwasher", "dish washer", "dishwashing machine"},  // 130
    {"screen", "silver screen", "projection screen"},  // 131
    {"blanket", "blankets", "cover"},  // 132
    {"sculpture"},  // 133
    {"hood", "exhaust hood"},  // 134
    {"sconce"},  // 135
    {"vase"},  // 136
    {"traffic light", "traffic lights", "traffic signal", "traffic signals", "stoplight"},  // 137
    {"tray"},  // 138
    {"ashcan", "trash can", "garbage can", "wastebin", "ash bin", "ash-bin", "ashbin", "dustbin", "trash barrel", "trash bin"},  // 139
    {"fan", "fans"},  // 140
    {"pier", "wharf", "wharfage", "dock"},  // 141
    {"crt screen"},  // 142
    {"plate", "plates"},  // 143
    {"monitor", "monitors", "monitoring device"},  // 144
    {"bulletin board", "notice board"},  // 145
    {"shower"},  // 146
    {"radiator", "radiators"},  // 147
    {"glass", "glasses", "drinking glass"},  // 148
    {"clock", "clocks"},  // 149
    {"flag", "flags"},  // 150
};
// COCO panoptic categories (panopticapi): {id, isthing, name}
const std::vector<CocoCategory> kCocoCategories = {
    {1, true, "person"},
    {2, true, "bicycle"},
    {3, true, "car"},
    {4, true, "motorcycle"},
    {5, true, "airplane"},
    {6, true, "bus"},
    {7, true, "train"},
    {8, true, "truck"},
    {9, true, "boat"},
    {10, true, "traffic light"},
    {11, true, "fire hydrant"},
    {13, true, "stop sign"},
    {14, true, "parking meter"},
    {15, true, "bench"},
    {16, true, "bird"},
    {17, true, "cat"},
    {18, true, "dog"},
    {19, true, "horse"},
    {20, true, "sheep"},
    {21, true, "cow"},
    {22, true, "elephant"},
    {23, true, "bear"},
    {24, true, "zebra"},
    {25, true, "giraffe"},
    {27, true, "backpack"},
    {28, true, "umbrella"},
    {31, true, "handbag"},
    {32, true, "tie"},
    {33, true, "suitcase"},
    {34, true, "frisbee"},
    {35, true, "skis"},
    {36, true, "snowboard"},
    {37, true, "sports ball"},
    {38, true, "kite"},
    {39, true, "baseball bat"},
    {40, true, "baseball glove"},
    {41, true, "skateboard"},
    {42, true, "surfboard"},
    {43, true, "tennis racket"},
    {44, true, "bottle"},
    {46, true, "wine glass"},
    {47, true, "cup"},
    {48, true, "fork"},
    {49, true, "knife"},
    {50, true, "spoon"},
    {51, true, "bowl"},
    {52, true, "banana"},
    {53, true, "apple"},
    {54, true, "sandwich"},
    {55, true, "orange"},
    {56, true, "broccoli"},
    {57, true, "carrot"},
    {58, true, "hot dog"},
    {59, true, "pizza"},
    {60, true, "donut"},
    {61, true, "cake"},
    {62, true, "chair"},
    {63, true, "couch"},
    {64, true, "potted plant"},
    {65, true, "bed"},
    {67, true, "dining table"},
    {70, true, "toilet"},
    {72, true, "tv"},
    {73, true, "laptop"},
    {74, true, "mouse"},
    {75, true, "remote"},
    {76, true, "keyboard"},
    {77, true, "cell phone"},
    {78, true, "microwave"},
    {79, true, "oven"},
    {80, true, "toaster"},
    {81, true, "sink"},
    {82, true, "refrigerator"},
    {84, true, "book"},
    {85, true, "clock"},
    {86, true, "vase"},
    {87, true, "scissors"},
    {88, true, "teddy bear"},
    {89, true, "hair drier"},
    {90, true, "toothbrush"},
    {92, false, "banner"},
    {93, false, "blanket"},
    {95, false, "bridge"},
    {100, false, "cardboard"},
    {107, false, "counter"},
    {109, false, "curtain"},
    {112, false, "door-stuff"},
    {118, false, "floor-wood"},
    {119, false, "flower"},
    {122, false, "fruit"},
    {125, false, "gravel"},
    {128, false, "house"},
    {130, false, "light"},
    {133, false, "mirror-stuff"},
    {138, false, "net"},
    {141, false, "pillow"},
    {144, false, "platform"},
    {145, false, "playingfield"},
    {147, false, "railroad"},
    {148, false, "river"},
    {149, false, "road"},
    {151, false, "roof"},
    {154, false, "sand"},
    {155, false, "sea"},
    {156, false, "shelf"},
    {159, false, "snow"},
    {161, false, "stairs"},
    {166, false, "tent"},
    {168, false, "towel"},
    {171, false, "wall-brick"},
    {175, false, "wall-stone"},
    {176, false, "wall-tile"},
    {177, false, "wall-wood"},
    {178, false, "water-other"},
    {180, false, "window-blind"},
    {181, false, "window-other"},
    {184, false, "tree-merged"},
    {185, false, "fence-merged"},
    {186, false, "ceiling-merged"},
    {187, false, "sky-other-merged"},
    {188, false, "cabinet-merged"},
    {189, false, "table-merged"},
    {190, false, "floor-other-merged"},
    {191, false, "pavement-merged"},
    {192, false, "mountain-merged"},
    {193, false, "grass-merged"},
    {194, false, "dirt-merged"},
    {195, false, "paper-merged"},
    {196, false, "food-other-merged"},
    {197, false, "building-other-merged"},
    {198, false, "rock-merged"},
    {199, false, "wall-other-merged"},
    {200, false, "rug-merged"},
};
// ade20k display names: dataset.py class_name[i][0] (mmseg ADE20K names)
const std::vector<std::string> kAdeNames = {
    "background", "wall", "building", "sky", "floor", "tree", "ceiling", "road",
    "bed", "windowpane", "grass", "cabinet", "sidewalk", "person", "earth", "door",
    "table", "mountain", "plant", "curtain", "chair", "car", "water", "painting",
    "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair",
    "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing",
    "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter", "sand",
    "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway",
    "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase",
    "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop",
    "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine",
    "hovel", "bus", "towel", "light", "truck", "tower", "chandelier", "awning",
    "streetlight", "booth", "television receiver", "airplane", "dirt track", "apparel", "pole", "land",
    "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van",
    "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool",
    "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal",
    "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce",
    "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
};

// VOC display names = Annotations xml names (and mmseg's VOC class names).
const std::vector<std::string> kVocNames = {
    "background", "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",  "car",   "cat",   "chair",    "cow",
    "diningtable", "dog",      "horse",   "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"};

// Cityscapes display names (dataset.py's CityDataset.class_name).
const std::vector<std::string> kCityNames = {
    "background", "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"};

// The paper's ctx59_class: index = paper class id, value = raw 459-class LabelMap id.
const std::vector<int64_t> kContextRawIds = {
    0,   2,   259, 260, 415, 324, 9,   258, 144, 18,  19,  22,  23,  397, 25,  284, 158, 159, 416, 33,
    162, 420, 454, 295, 296, 427, 44,  45,  46,  308, 59,  440, 445, 31,  232, 65,  354, 424, 68,  326,
    72,  458, 34,  207, 80,  355, 85,  347, 220, 349, 360, 98,  187, 104, 105, 366, 189, 368, 113, 115};

// Cityscapes mapping_20 (dataset.py): labelId -> paper class; absent labelIds -> 0.
const std::map<int64_t, int64_t> kMapping20 = {
    {7, 1},   {8, 2},   {11, 3},  {12, 4},  {13, 5},  {17, 6},  {19, 7},  {20, 8},  {21, 9},  {22, 10},
    {23, 11}, {24, 12}, {25, 13}, {26, 14}, {27, 15}, {28, 16}, {31, 17}, {32, 18}, {33, 19}};

// COCO-Stuff (the paper's fine_to_coarse_dict.pickle, `fine_index_to_coarse_index`): index = fine class (0..181,
// COCO-Stuff category id - 1), value = coarse class (0..26). Checked against the pickle by tests/datasets.
const std::array<int64_t, kCocoStuffFine> kCocoStuffFineToCoarse = {
     9, 11, 11, 11, 11, 11, 11, 11, 11,  8,  8,  8,  8,  8,  8,  7,  7,  7,  7,  7,
     7,  7,  7,  7,  7,  6,  6,  6,  6,  6,  6,  6,  6, 10, 10, 10, 10, 10, 10, 10,
    10, 10, 10,  5,  5,  5,  5,  5,  5,  5,  5,  2,  2,  2,  2,  2,  2,  2,  2,  2,
     2,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  0,  0,  0,  0,  0,  0,  1,  1,  1,
     1,  1,  1,  4,  4,  4,  4,  4,  4,  4,  4, 17, 17, 22, 20, 20, 22, 15, 25, 16,
    13, 12, 12, 17, 17, 23, 15, 15, 17, 15, 21, 15, 25, 13, 13, 13, 13, 13, 22, 26,
    14, 14, 15, 22, 21, 21, 24, 20, 22, 15, 17, 16, 15, 22, 24, 21, 17, 25, 16, 21,
    17, 22, 16, 21, 21, 25, 21, 26, 21, 24, 20, 17, 14, 21, 26, 15, 23, 20, 21, 24,
    15, 24, 22, 25, 15, 20, 17, 17, 22, 14, 18, 18, 18, 18, 18, 18, 18, 26, 26, 19,
    19, 24,
};
// coco-stuff: caption_dataset.py COCODataset.class_name, index = paper class id (28 = background + 27 coarse; 15 and
// 16 duplicate 3 and 4 and are merged into them by the loaders).
const std::vector<std::vector<std::string>> kCocoStuffSynonyms = {
    {},  // 0
    {"electronics", "electronic"},  // 1
    {"appliance", "appliances"},  // 2
    {"food"},  // 3
    {"furniture", "furnitures"},  // 4
    {"indoor"},  // 5
    {"kitchen stuff"},  // 6
    {"accessory", "accessories"},  // 7
    {"animal", "animals"},  // 8
    {"outdoor"},  // 9
    {"person", "persons", "man", "men", "woman", "women", "child", "children", "kid", "kids"},  // 10
    {"sport equipment", "sport equipments"},  // 11
    {"vehicle", "vehicles"},  // 12
    {"ceiling"},  // 13
    {"floor"},  // 14
    {"food"},  // 15
    {"furniture"},  // 16
    {"raw material"},  // 17
    {"textile"},  // 18
    {"wall", "walls"},  // 19
    {"window", "windows"},  // 20
    {"building", "buildings"},  // 21
    {"ground", "grounds"},  // 22
    {"plant", "plants"},  // 23
    {"sky"},  // 24
    {"solid"},  // 25
    {"structural"},  // 26
    {"water"},  // 27
};
// The 27 coarse classes' names (the pickle's fine_name_to_coarse_name values), index = coarse class: the standard
// protocol's class names, and the paper's display names (with class 15/16 told apart from 3/4).
const std::vector<std::string> kCocoStuffCoarseNames = {
    "electronic-things", "appliance-things", "food-things",   "furniture-things",  "indoor-things",
    "kitchen-things",    "accessory-things", "animal-things", "outdoor-things",    "person-things",
    "sports-things",     "vehicle-things",   "ceiling-stuff", "floor-stuff",       "food-stuff",
    "furniture-stuff",   "rawmaterial-stuff", "textile-stuff", "wall-stuff",       "window-stuff",
    "building-stuff",    "ground-stuff",     "plant-stuff",   "sky-stuff",         "solid-stuff",
    "structural-stuff",  "water-stuff"};

constexpr int64_t kContextMaxRaw = 459;

// clang-format on

struct Lookups {
  std::array<int64_t, kContextMaxRaw + 1> ctx_raw_to_paper{};
  std::array<int64_t, kContextMaxRaw + 1> ctx_raw_to_mmseg{};
  std::array<int64_t, 60> ctx_mmseg_to_paper{};
  std::array<int64_t, 60> ctx_paper_to_mmseg{};
  std::map<int64_t, int64_t> coco_cat_to_class;
  std::map<std::string, int64_t> voc_xml;
};

const Lookups& lookups() {
  static const Lookups l = [] {
    Lookups r;
    r.ctx_raw_to_paper.fill(0);
    r.ctx_raw_to_mmseg.fill(0);
    for (size_t i = 0; i < kContextRawIds.size(); ++i) r.ctx_raw_to_paper[kContextRawIds[i]] = static_cast<int64_t>(i);
    std::vector<int64_t> sorted = kContextRawIds;
    std::sort(sorted.begin(), sorted.end());
    for (size_t m = 0; m < sorted.size(); ++m) {
      r.ctx_raw_to_mmseg[sorted[m]] = static_cast<int64_t>(m);
      const int64_t paper = r.ctx_raw_to_paper[sorted[m]];
      r.ctx_mmseg_to_paper[m] = paper;
      r.ctx_paper_to_mmseg[paper] = static_cast<int64_t>(m);
    }
    // class_to_id = {name[0]: idx}: a thing category maps to the class whose first synonym is its name.
    std::map<std::string, int64_t> first_synonym;
    for (size_t c = 1; c < kCocoSynonyms.size(); ++c) first_synonym[kCocoSynonyms[c][0]] = static_cast<int64_t>(c);
    for (const auto& cat : kCocoCategories) {
      if (!cat.isthing) {
        r.coco_cat_to_class[cat.id] = 0;
      } else {
        auto it = first_synonym.find(cat.name);
        if (it == first_synonym.end()) throw std::logic_error(std::string("coco thing without class: ") + cat.name);
        r.coco_cat_to_class[cat.id] = it->second;
      }
    }
    for (size_t i = 0; i < kVocNames.size(); ++i) r.voc_xml[kVocNames[i]] = static_cast<int64_t>(i);
    return r;
  }();
  return l;
}

ClassTable make_table(DatasetKind kind, Protocol protocol) {
  ClassTable t;
  t.kind = kind;
  t.protocol = protocol;
  const bool paper = protocol == Protocol::paper;
  t.ignore_index = paper ? kNoIgnore : kIgnoreIndex;
  auto add = [&](std::string name, std::vector<std::string> syn) {
    t.classes.push_back({std::move(name), std::move(syn)});
  };
  switch (kind) {
    case DatasetKind::Voc:
      for (size_t i = 0; i < kVocNames.size(); ++i) add(kVocNames[i], kVocSynonyms[i]);
      t.background_is_class0 = true;
      break;
    case DatasetKind::CocoObject:
      add("background", {});
      for (size_t i = 1; i < kCocoSynonyms.size(); ++i) add(kCocoSynonyms[i][0], kCocoSynonyms[i]);
      t.background_is_class0 = true;
      break;
    case DatasetKind::Context:
      if (paper) {
        add("background", {});
        for (size_t i = 1; i < kContextSynonyms.size(); ++i) add(kContextSynonyms[i][0], kContextSynonyms[i]);
        t.background_is_class0 = true;
      } else {
        // mmseg PascalContextDataset59: sorted raw ids, background dropped (reduce_zero_label).
        for (int64_t m = 1; m < 60; ++m) {
          const auto& syn = kContextSynonyms[lookups().ctx_mmseg_to_paper[m]];
          add(syn[0], syn);
        }
        t.background_is_class0 = false;
      }
      break;
    case DatasetKind::Cityscapes:
      for (size_t i = paper ? 0 : 1; i < kCityNames.size(); ++i) add(kCityNames[i], kCitySynonyms[i]);
      t.background_is_class0 = paper;
      break;
    case DatasetKind::Ade20k:
      for (size_t i = paper ? 0 : 1; i < kAdeNames.size(); ++i) add(kAdeNames[i], kAdeSynonyms[i]);
      t.background_is_class0 = paper;
      break;
    case DatasetKind::CocoStuff:
      // paper: 0 background + the captioner's 27 lists (dataset.py's names; 15/16 shown as food-stuff and
      // furniture-stuff, they never occur). standard: the 27 coarse classes, each with its paper class's synonyms.
      if (paper) add("background", {});
      for (int64_t c = 0; c < kCocoStuffCoarse; ++c) {
        const auto& syn = kCocoStuffSynonyms[static_cast<size_t>(c + 1)];
        add(paper && c + 1 != 15 && c + 1 != 16 ? syn[0] : kCocoStuffCoarseNames[static_cast<size_t>(c)], syn);
      }
      t.background_is_class0 = paper;
      break;
  }
  return t;
}

}  // namespace

const char* to_string(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::Voc: return "voc";
    case DatasetKind::Context: return "context";
    case DatasetKind::CocoObject: return "coco-object";
    case DatasetKind::Cityscapes: return "cityscapes";
    case DatasetKind::Ade20k: return "ade20k";
    case DatasetKind::CocoStuff: return "coco-stuff";
  }
  return "?";
}

const std::vector<DatasetKind>& all_dataset_kinds() {
  static const std::vector<DatasetKind> all = {DatasetKind::Voc,        DatasetKind::Context, DatasetKind::CocoObject,
                                               DatasetKind::Cityscapes, DatasetKind::Ade20k,  DatasetKind::CocoStuff};
  return all;
}

DatasetKind parse_dataset_kind(const std::string& name) {
  for (DatasetKind k : all_dataset_kinds())
    if (name == to_string(k)) return k;
  fail("unknown dataset '{}' (choices: voc, context, coco-object, cityscapes, ade20k, coco-stuff)", name);
}

const ClassInfo& ClassTable::at(int64_t id) const {
  if (id < 0 || id >= num_classes())
    fail("{} ({}): class id {} out of range [0, {})", to_string(kind), to_string(protocol), id, num_classes());
  return classes[static_cast<size_t>(id)];
}

std::vector<std::vector<std::string>> ClassTable::synonym_lists() const {
  std::vector<std::vector<std::string>> out;
  out.reserve(classes.size());
  for (const auto& c : classes) out.push_back(c.synonyms);
  return out;
}

std::vector<std::string> ClassTable::names() const {
  std::vector<std::string> out;
  out.reserve(classes.size());
  for (const auto& c : classes) out.push_back(c.name);
  return out;
}

const ClassTable& class_table(DatasetKind kind, Protocol protocol) {
  static const std::map<std::pair<int, int>, ClassTable> tables = [] {
    std::map<std::pair<int, int>, ClassTable> m;
    for (DatasetKind k : all_dataset_kinds())
      for (Protocol p : {Protocol::paper, Protocol::standard})
        m.emplace(std::make_pair(static_cast<int>(k), static_cast<int>(p)), make_table(k, p));
    return m;
  }();
  return tables.at({static_cast<int>(kind), static_cast<int>(protocol)});
}

int64_t voc_xml_name_to_class(const std::string& name) {
  const auto& m = lookups().voc_xml;
  auto it = m.find(name);
  return it == m.end() ? -1 : it->second;
}

const std::vector<int64_t>& context_paper_raw_ids() { return kContextRawIds; }

int64_t context_raw_to_paper(int64_t raw) {
  return raw >= 0 && raw <= kContextMaxRaw ? lookups().ctx_raw_to_paper[raw] : 0;
}

int64_t context_raw_to_mmseg(int64_t raw) {
  return raw >= 0 && raw <= kContextMaxRaw ? lookups().ctx_raw_to_mmseg[raw] : 0;
}

int64_t context_mmseg_to_paper(int64_t m) {
  if (m < 0 || m >= 60) fail("Pascal-Context mmseg index {} out of range [0, 60)", m);
  return lookups().ctx_mmseg_to_paper[m];
}

int64_t context_paper_to_mmseg(int64_t p) {
  if (p < 0 || p >= 60) fail("Pascal-Context paper class {} out of range [0, 60)", p);
  return lookups().ctx_paper_to_mmseg[p];
}

const std::vector<CocoCategory>& coco_panoptic_categories() { return kCocoCategories; }

int64_t coco_category_to_class(int64_t category_id) {
  const auto& m = lookups().coco_cat_to_class;
  auto it = m.find(category_id);
  return it == m.end() ? -1 : it->second;
}

int64_t cityscapes_label_to_paper(int64_t label_id) {
  auto it = kMapping20.find(label_id);
  return it == kMapping20.end() ? 0 : it->second;
}

int64_t cityscapes_label_to_train(int64_t label_id) {
  auto it = kMapping20.find(label_id);
  return it == kMapping20.end() ? kIgnoreIndex : it->second - 1;
}

int64_t coco_stuff_fine_to_coarse(int64_t fine) {
  return fine >= 0 && fine < kCocoStuffFine ? kCocoStuffFineToCoarse[static_cast<size_t>(fine)] : -1;
}

int64_t coco_stuff_coarse_to_paper(int64_t coarse) {
  if (coarse < 0 || coarse >= kCocoStuffCoarse) fail("COCO-Stuff coarse class {} out of range [0, 27)", coarse);
  const int64_t c = coarse + 1;  // mapping_coco: fine k + 1 -> coarse v + 1
  return c == 15 ? 3 : c == 16 ? 4 : c;
}

}  // namespace gb::datasets
