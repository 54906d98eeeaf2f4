"""Theme name lists for the generator: one theme per problem, names drawn without replacement."""

from __future__ import annotations

THEMES: dict[str, tuple[str, ...]] = {
    "concerts": (
        "Jazz Quartet Matinee", "Symphony Rehearsal", "Indie Rock Showcase", "Opera Gala", "Folk Night",
        "Piano Recital", "Electronic Beats Set", "Choir Performance", "String Trio", "Blues Jam Session",
        "Headliner Soundcheck", "Open Mic", "Acoustic Sunset Set", "Brass Band Parade", "DJ Afterparty",
        "Chamber Music Hour", "Hip-Hop Cypher", "Organ Concert",
    ),
    "university": (
        "Linear Algebra Lecture", "Organic Chemistry Lab", "History Seminar", "Office Hours", "Study Group",
        "Thesis Meeting", "Library Research", "Calculus Tutorial", "Physics Problem Class", "Career Fair",
        "Guest Lecture", "Statistics Exam", "Language Exchange", "Club Meeting", "Lab Report Writing",
        "Advisor Check-in", "Philosophy Reading Group",
    ),
    "office": (
        "Team Standup", "Quarterly Review", "Client Call", "Budget Planning", "One-on-One", "Design Review",
        "Hiring Interview", "All-Hands Meeting", "Vendor Negotiation", "Sprint Planning", "Code Review",
        "Lunch with Manager", "Compliance Training", "Product Demo", "Retrospective", "Roadmap Workshop",
        "Expense Reports",
    ),
    "daily_life": (
        "Grocery Shopping", "Gym Workout", "Dentist Appointment", "Laundry", "Coffee with Friend",
        "Dog Walk", "Cooking Dinner", "Haircut", "Bank Visit", "Yoga Class", "Call Parents", "Car Service",
        "Pharmacy Pickup", "Reading Time", "House Cleaning", "Farmers Market", "Evening Run",
    ),
    "tech_conference": (
        "Opening Keynote", "Kubernetes Deep Dive", "AI Safety Panel", "Rust Workshop", "Networking Lunch",
        "Startup Pitch Session", "Lightning Talks", "Security Hands-on Lab", "Closing Keynote",
        "Data Engineering Track", "Booth Visits", "Hackathon Kickoff", "Frontend Performance Talk",
        "Cloud Cost Panel", "Speaker Dinner", "Open Source Meetup", "GPU Computing Tutorial",
    ),
    "hospital": (
        "Morning Rounds", "Surgery Consult", "Patient Intake", "Radiology Review", "Pharmacy Sync",
        "Nursing Handoff", "Grand Rounds", "Family Meeting", "Discharge Planning", "ICU Check",
        "Lab Results Review", "Clinic Session", "Ethics Committee", "Case Conference", "Charting",
        "On-Call Briefing", "Physiotherapy Session",
    ),
    "sports_festival": (
        "Marathon Start", "Swimming Heats", "Tennis Quarterfinal", "Basketball Final", "Medal Ceremony",
        "Gymnastics Qualifier", "Cycling Time Trial", "Fencing Bouts", "Volleyball Semifinal",
        "Archery Round", "Athlete Meet and Greet", "Rowing Regatta", "Climbing Finals", "Judo Matches",
        "Press Conference", "Warm-up Session", "Table Tennis Doubles",
    ),
    "film_festival": (
        "Documentary Premiere", "Short Film Block", "Director Q&A", "Red Carpet Arrival",
        "Animation Showcase", "Screenwriting Masterclass", "Retrospective Screening", "Jury Deliberation",
        "Industry Brunch", "Foreign Film Matinee", "Midnight Horror Screening", "Awards Ceremony",
        "Student Films", "Producer Panel", "Press Junket", "Restored Classic", "Closing Night Film",
    ),
    "family_weekend": (
        "Soccer Practice", "Birthday Party", "Zoo Visit", "Piano Lesson", "Family Brunch", "Swim Lessons",
        "Museum Trip", "Playdate", "Baking Cookies", "Movie Night", "Garden Work", "Bike Ride",
        "Grandparents Visit", "Library Story Hour", "Board Games", "Picnic in the Park", "Art Class",
    ),
    "travel_day": (
        "Hotel Checkout", "Airport Security", "Flight Boarding", "Train Transfer", "City Walking Tour",
        "Museum Entry Slot", "Lunch Reservation", "Boat Cruise", "Car Rental Pickup", "Souvenir Shopping",
        "Hotel Check-in", "Sunset Viewpoint", "Cooking Class", "Wine Tasting", "Local Market Visit",
        "Guided Hike", "Dinner Show",
    ),
}
